package io.kappa.udfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kappa.udfs.DeviceClock.Seen;
import io.kappa.udfs.DeviceClock.Silence;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The DEVICE_SILENT decision without Flink: a small driver plays Flink's part (timers fire in timestamp
 * order once the watermark passes them, one timer per timestamp) over hand-written arrivals. */
class DeviceClockTest {
    private static final int S = 180; // silent_after_s
    private static final String DEVICE = "d-1";

    private static Seen seen(double atS) {
        return seen(atS, S);
    }

    private static Seen seen(double atS, int silentAfterS) {
        return new Seen((long) (atS * 1000), "site-1", silentAfterS, "rules-v1", 300);
    }

    /** (first s, last s, resolved) of each alert, as compact expectations. */
    private static List<String> summary(List<Silence> alerts) {
        return alerts.stream().map(a -> a.firstMs() / 1000 + "-" + a.lastMs() / 1000 + (a.resolved() ? "R" : "O"))
                .collect(Collectors.toList());
    }

    private static final class Driver {
        final DeviceClock clock = new DeviceClock();
        final PriorityQueue<Long> timers = new PriorityQueue<>();
        final List<Silence> alerts = new ArrayList<>();
        long watermark = Long.MIN_VALUE;

        void register(List<Long> more) {
            for (long timer : more) {
                if (!timers.contains(timer)) {
                    timers.add(timer);
                }
            }
        }

        void reading(Seen item) {
            assertTrue(item.eventMs > watermark, "the job routes late readings away before this function");
            register(List.of(clock.onReading(item)));
        }

        void advance(long to) {
            watermark = to;
            while (!timers.isEmpty() && timers.peek() <= to) {
                register(clock.onTimer(DEVICE, timers.poll(), to, null, alerts));
            }
        }

        List<String> summary() {
            return DeviceClockTest.summary(alerts);
        }
    }

    @Test
    void regularReadingsRaiseNothing() {
        Driver driver = new Driver();
        for (int k = 0; k < 20; k++) {
            driver.reading(seen(k * 60));
            driver.advance(k * 60 * 1000L - 5_000);
        }
        driver.advance(20 * 60 * 1000L + 10L * S * 1000);
        assertEquals(List.of(19 * 60 + "-" + (19 * 60 + S) + "O"), driver.summary(), "only the silence after the last");
    }

    @Test
    void aGapLongerThanTheBoundRaisesOpenThenResolved() {
        Driver driver = new Driver();
        driver.reading(seen(0));
        driver.reading(seen(10));
        driver.advance(100_000);
        assertEquals(List.of(), driver.summary());
        driver.advance(10_000 + S * 1000L); // the deadline passes with no newer reading
        assertEquals(List.of("10-190O"), driver.summary());
        driver.reading(seen(400));
        driver.advance(500_000);
        assertEquals(List.of("10-190O", "10-400R"), driver.summary());
        assertEquals(Set.of(10_000L), driver.alerts.stream().map(Silence::firstMs).collect(Collectors.toSet()),
                "open and resolved share the first reading (one id)");
    }

    @Test
    void aGapExactlyAtTheBoundIsNotSilent() {
        Driver driver = new Driver();
        driver.reading(seen(0));
        driver.reading(seen(S)); // no reading for exactly S seconds: not longer than allowed
        driver.advance(S * 1000L + 1_000);
        driver.reading(seen(S + 10));
        driver.advance(S * 1000L + 20_000);
        assertEquals(List.of(), driver.summary());
    }

    @Test
    void outOfOrderArrivalInsideTheWatermarkDelayIsNoGap() {
        Driver driver = new Driver();
        driver.reading(seen(0));
        driver.advance(-1);
        driver.reading(seen(200)); // arrives first ...
        driver.reading(seen(100)); // ... the reading in between arrives after it, still on time
        driver.advance(250_000);
        assertEquals(List.of(), driver.summary());
    }

    @Test
    void duplicatesAreTakenOnce() {
        Driver driver = new Driver();
        for (int at : new int[] {0, 0, 60, 60, 120}) {
            driver.reading(seen(at));
        }
        driver.advance(125_000);
        assertEquals(120_000L, driver.clock.last.eventMs);
        assertTrue(driver.clock.pending.isEmpty());
        assertEquals(List.of(), driver.summary());
    }

    @Test
    void theEndOfInputIsNotEvidenceOfSilence() {
        Driver driver = new Driver();
        driver.reading(seen(0));
        driver.reading(seen(30));
        driver.advance(DeviceClock.MAX_WATERMARK); // a bounded run ends: the data stopped, not the device
        assertEquals(List.of(), driver.summary());
    }

    @Test
    void theEndOfInputStillRaisesAGapThatALaterReadingProves() {
        Driver driver = new Driver();
        driver.reading(seen(0));
        driver.reading(seen(1000)); // both parked, then the final watermark fires everything at once
        driver.advance(DeviceClock.MAX_WATERMARK);
        assertEquals(List.of("0-180O", "0-1000R"), driver.summary(), "the same as when watermarks flowed");
    }

    @Test
    void theBoundInForceForTheLastReadingApplies() {
        Driver driver = new Driver();
        driver.reading(seen(0, 600)); // e.g. an operator raised this device's bound
        driver.reading(seen(400, 600));
        driver.advance(1_100_000);
        assertEquals(List.of("400-1000O"), driver.summary());
        assertEquals(600, driver.alerts.get(0).silentAfterS());
    }

    @Test
    void anOpenSilenceIsRaisedOnce() {
        Driver driver = new Driver();
        driver.reading(seen(0));
        driver.advance(S * 1000L);
        driver.advance(10L * S * 1000);
        assertEquals(List.of("0-180O"), driver.summary());
    }

    @Test
    void aLateFiredDeadlineTimerStillGivesOpenThenResolved() {
        DeviceClock clock = new DeviceClock();
        List<Silence> alerts = new ArrayList<>();
        clock.onReading(seen(0));
        clock.onTimer(DEVICE, 0, 0, null, alerts); // registers the deadline timer at 180 s ...
        clock.onReading(seen(300));
        clock.onTimer(DEVICE, 300_000, 400_000, null, alerts); // ... which fires after this one
        List<Silence> late = new ArrayList<>();
        clock.onTimer(DEVICE, S * 1000L, 400_000, null, late);
        assertEquals(List.of("0-180O", "0-300R"), summary(alerts));
        assertEquals(List.of(), late);
    }

    @Test
    void aDeadlineTheWatermarkAlreadyPassedRaisesAtOnce() {
        // the watermark jumps past the last reading and its deadline in one step (a catch-up): the
        // reading's own timer raises the silence, not waiting for the deadline timer it registers
        DeviceClock clock = new DeviceClock();
        clock.onReading(seen(0));
        clock.onReading(seen(30));
        List<Silence> alerts = new ArrayList<>();
        assertEquals(List.of(S * 1000L), clock.onTimer(DEVICE, 0, 500_000, null, alerts));
        assertEquals(List.of(), alerts, "the reading at 30 s is parked: it fills the gap");
        clock.onTimer(DEVICE, 30_000, 500_000, null, alerts);
        assertEquals(List.of("30-210O"), summary(alerts));
        List<Silence> late = new ArrayList<>();
        clock.onTimer(DEVICE, 30_000 + S * 1000L, DeviceClock.MAX_WATERMARK, 500_000L, late);
        assertEquals(List.of(), late, "raised once");
    }

    @ParameterizedTest
    @CsvSource({",false", "179999,false", "180000,true"})
    void aDeadlineTimerFiredByTheFinalWatermarkCountsWhatTheDataProved(Long seenWatermark, boolean raised) {
        DeviceClock clock = new DeviceClock();
        clock.onReading(seen(0));
        List<Silence> alerts = new ArrayList<>();
        clock.onTimer(DEVICE, 0, 100_000, null, alerts);
        clock.onTimer(DEVICE, S * 1000L, DeviceClock.MAX_WATERMARK, seenWatermark, alerts);
        assertEquals(raised ? List.of("0-180O") : List.of(), summary(alerts));
    }
}
