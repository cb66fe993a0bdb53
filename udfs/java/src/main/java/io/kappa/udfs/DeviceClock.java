package io.kappa.udfs;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * DEVICE_SILENT's decision for one device, on event time, without Flink (unit-tested by
 * DeviceClockTest; {@link DeviceSilence} keeps one clock per device in keyed state and plays the
 * timers).
 *
 * <p>Per device it keeps the last reading in event-time order and the readings not yet ordered:
 * <ul>
 *   <li>Every on-time reading is parked until the watermark passes its event time (a timer at that
 *       time), then taken in event-time order, so out-of-order arrival inside the watermark delay never
 *       looks like a gap.</li>
 *   <li>After the last reading the clock waits for its deadline, {@code last + silent_after_s}. When the
 *       watermark passes the deadline with no newer reading, the device has been silent longer than
 *       allowed: an open alert is raised (last_ms = the deadline). Any reading that could still fill the
 *       gap would be late by then, so the decision is final.</li>
 *   <li>When the device speaks again, the same alert (same first reading, so the same alert id
 *       downstream) is raised again as resolved, with last_ms = the reading that ended the gap.</li>
 * </ul>
 *
 * <p>At the end of a bounded run (replay, tests) Flink sends the final watermark (Long.MAX): a deadline
 * reached only by it is no evidence of silence, since the data simply ended; such a device is not
 * alerted unless a later reading of it exists. The decisions therefore depend only on the readings and
 * their event times, so a replay of the same log raises the same alerts.
 *
 * <p>A POJO (public fields, no-argument constructor) so that Flink serializes it as keyed state.
 */
public class DeviceClock {
    public static final long MAX_WATERMARK = Long.MAX_VALUE;

    /** What the silence rule needs of one reading (thresholds as looked up for it). */
    public static class Seen {
        public long eventMs;
        public String siteId;
        public int silentAfterS;
        public String ruleVersion;
        public int cooldownS;

        public Seen() {}

        public Seen(long eventMs, String siteId, int silentAfterS, String ruleVersion, int cooldownS) {
            this.eventMs = eventMs;
            this.siteId = siteId;
            this.silentAfterS = silentAfterS;
            this.ruleVersion = ruleVersion;
            this.cooldownS = cooldownS;
        }

        long deadlineMs() {
            return eventMs + silentAfterS * 1000L;
        }
    }

    /** One DEVICE_SILENT alert: open (last_ms = deadline) or resolved (last_ms = the reading that ended
     * the gap). Both carry first_ms = the last reading before the gap. */
    public record Silence(String deviceId, String siteId, long firstMs, long lastMs, int silentAfterS,
                          String ruleVersion, int cooldownS, boolean resolved) {
        static Silence of(String deviceId, Seen before, long lastMs, boolean resolved) {
            return new Silence(deviceId, before.siteId, before.eventMs, lastMs, before.silentAfterS,
                    before.ruleVersion, before.cooldownS, resolved);
        }
    }

    public Seen last;
    public TreeMap<Long, Seen> pending = new TreeMap<>();
    public Long alertedForMs;

    /** Parks a reading until the watermark passes it; returns the event-time timer to register.
     * A re-sent copy (same event time) is parked once. */
    public long onReading(Seen seen) {
        pending.putIfAbsent(seen.eventMs, seen);
        return seen.eventMs;
    }

    /**
     * The watermark reached {@code timestamp}: takes the parked readings up to it in event-time order,
     * resolves the gap they end, and raises an open silence once the watermark has passed the deadline
     * of the last reading. Adds the alerts to {@code alerts} and returns the timers to register.
     *
     * @param seenWatermark the highest watermark below the final one the operator has seen (null: none).
     *     It matters only when the final watermark fires a timer: a deadline the data's own watermark had
     *     passed is then proven all the same.
     */
    public List<Long> onTimer(String deviceId, long timestamp, long watermark, Long seenWatermark,
                              List<Silence> alerts) {
        List<Long> timers = new ArrayList<>(1);
        boolean due = false;
        Iterator<Map.Entry<Long, Seen>> parked = pending.headMap(timestamp, true).entrySet().iterator();
        while (parked.hasNext()) {
            Seen seen = parked.next().getValue();
            parked.remove();
            due = true;
            if (last != null && seen.eventMs <= last.eventMs) {
                continue; // cannot happen for on-time readings; kept safe
            }
            if (last != null && seen.eventMs > last.deadlineMs()) {
                // the deadline timer of `last` may come after this reading's: the gap proves the silence anyway
                if (alertedForMs == null || alertedForMs != last.eventMs) {
                    alerts.add(Silence.of(deviceId, last, last.deadlineMs(), false));
                }
                alerts.add(Silence.of(deviceId, last, seen.eventMs, true));
                alertedForMs = last.eventMs;
            }
            last = seen;
        }
        if (due && last != null) {
            timers.add(last.deadlineMs());
        }
        if (last != null && (alertedForMs == null || alertedForMs != last.eventMs)
                && silent(watermark, seenWatermark)) {
            alerts.add(Silence.of(deviceId, last, last.deadlineMs(), false));
            alertedForMs = last.eventMs;
        }
        return timers;
    }

    /** The data's watermark passed the deadline of `last` and no parked reading fills the gap (one that
     * does is taken by its own timer). The final watermark alone proves nothing: the data ended. */
    private boolean silent(long watermark, Long seenWatermark) {
        Long proven = watermark < MAX_WATERMARK ? Long.valueOf(watermark) : seenWatermark;
        long deadline = last.deadlineMs();
        if (proven == null || proven < deadline) {
            return false;
        }
        return pending.isEmpty() || pending.firstKey() > deadline;
    }
}
