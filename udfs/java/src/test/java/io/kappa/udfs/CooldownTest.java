package io.kappa.udfs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The cool-down decision without Flink: matches of one device and alert type, in order. */
class CooldownTest {
    private static final int COOLDOWN_S = 300;

    /** The (first s, last s) matches that become alerts, in order. */
    private static List<List<Integer>> run(int cooldownS, int[]... matches) {
        Cooldown state = null;
        List<List<Integer>> raised = new ArrayList<>();
        for (int[] match : matches) {
            Cooldown next = Cooldown.decide(state, match[0] * 1000L, match[1] * 1000L, cooldownS);
            if (next != null) {
                state = next;
                raised.add(List.of(match[0], match[1]));
            }
        }
        return raised;
    }

    private static int[] m(int first, int last) {
        return new int[] {first, last};
    }

    @Test
    void aRepeatInsideTheCoolDownIsSuppressed() {
        assertEquals(List.of(List.of(50, 70), List.of(400, 420)), run(COOLDOWN_S, m(50, 70), m(120, 140), m(400, 420)));
    }

    @Test
    void theCoolDownRunsFromTheRaisedAlertNotFromSuppressedRepeats() {
        // 120 and 300 are both inside 70 + 300; 380 is not, although it is within 300 s of the repeat at 300
        assertEquals(List.of(List.of(50, 70), List.of(380, 400)),
                run(COOLDOWN_S, m(50, 70), m(120, 140), m(300, 320), m(380, 400)));
    }

    @Test
    void twoMatchesAcrossAClockBoundaryAreStillOneAlert() {
        assertEquals(List.of(List.of(299, 310)), run(COOLDOWN_S, m(299, 310), m(301, 320)));
    }

    @Test
    void exactlyAtTheEndOfTheCoolDownAlertsAgain() {
        assertEquals(List.of(List.of(0, 20), List.of(320, 340)), run(COOLDOWN_S, m(0, 20), m(320, 340)));
    }

    @Test
    void zeroCoolDownAlertsEveryMatch() {
        assertEquals(List.of(List.of(0, 20), List.of(21, 30), List.of(31, 40)), run(0, m(0, 20), m(21, 30), m(31, 40)));
    }

    @Test
    void anUpdateOfTheRaisedAlertPasses() {
        // DEVICE_SILENT: open (last = deadline), then resolved (same first reading, later last)
        assertEquals(List.of(List.of(100, 280), List.of(100, 400)), run(COOLDOWN_S, m(100, 280), m(100, 400), m(450, 630)));
    }
}
