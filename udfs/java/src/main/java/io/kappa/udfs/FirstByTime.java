package io.kappa.udfs;

import org.apache.flink.table.functions.AggregateFunction;

/**
 * FIRST_BY_TIME(value, event_ms): the non-null value with the earliest event time in the group.
 * Flink's FIRST_VALUE follows arrival order, which out-of-order input makes differ from event
 * order; this one gives the same answer however the readings arrive (live run or replay).
 */
public class FirstByTime extends AggregateFunction<Double, TimedValue> {
    @Override
    public TimedValue createAccumulator() {
        return new TimedValue();
    }

    public void accumulate(TimedValue acc, Double value, Long eventMs) {
        acc.offer(value, eventMs, true);
    }

    public void merge(TimedValue acc, Iterable<TimedValue> others) {
        for (TimedValue other : others) {
            acc.offer(other.value, other.time, true);
        }
    }

    @Override
    public Double getValue(TimedValue acc) {
        return acc.value;
    }
}
