package io.kappa.udfs;

/**
 * The cool-down decision, without Flink (unit-tested by CooldownTest; {@link AlertCooldown} keeps the
 * last raised alert per device and alert type in keyed state).
 *
 * <p>After an alert of one type on one device, no new alert of that type for that device until its
 * cool-down ({@code alert_thresholds.cooldown_s}) has passed, measured in event time from the moment the
 * alert was raised (its last_event_time). A match with the same first reading as the raised alert is an
 * update of it (a DEVICE_SILENT alert being resolved), not a repeat.
 *
 * <p>A POJO (public fields, no-argument constructor) so that Flink serializes it as keyed state.
 */
public class Cooldown {
    public long firstMs;
    public long raisedAtMs; // its last_event_time: when it was raised, in event time
    public int cooldownS;

    public Cooldown() {}

    Cooldown(long firstMs, long raisedAtMs, int cooldownS) {
        this.firstMs = firstMs;
        this.raisedAtMs = raisedAtMs;
        this.cooldownS = cooldownS;
    }

    long quietUntilMs() {
        return raisedAtMs + cooldownS * 1000L;
    }

    /** The state after a match, or null when the match is suppressed (the state is then unchanged). */
    static Cooldown decide(Cooldown previous, long firstMs, long lastMs, int cooldownS) {
        if (previous != null && firstMs == previous.firstMs) {
            return previous;
        }
        if (previous != null && firstMs < previous.quietUntilMs()) {
            return null;
        }
        return new Cooldown(firstMs, lastMs, cooldownS);
    }
}
