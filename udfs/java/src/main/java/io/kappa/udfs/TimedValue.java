package io.kappa.udfs;

/** Accumulator of FIRST_BY_TIME / LAST_BY_TIME: the chosen value and its event time (epoch ms). */
public class TimedValue {
    public Double value;
    public Long time;

    /** True if (time, value) should replace the current choice; ties on time break on value, so
     * the result does not depend on arrival order. */
    boolean replacedBy(Long otherTime, Double otherValue, boolean earliest) {
        if (time == null) {
            return true;
        }
        int byTime = Long.compare(otherTime, time);
        if (byTime != 0) {
            return earliest ? byTime < 0 : byTime > 0;
        }
        int byValue = Double.compare(otherValue, value);
        return earliest ? byValue < 0 : byValue > 0;
    }

    void offer(Double otherValue, Long otherTime, boolean earliest) {
        if (otherValue == null || otherTime == null) {
            return;
        }
        if (replacedBy(otherTime, otherValue, earliest)) {
            value = otherValue;
            time = otherTime;
        }
    }
}
