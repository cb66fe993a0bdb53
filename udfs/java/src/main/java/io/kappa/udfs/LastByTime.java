package io.kappa.udfs;

import org.apache.flink.table.functions.AggregateFunction;

/** LAST_BY_TIME(value, event_ms): the non-null value with the latest event time in the group. */
public class LastByTime extends AggregateFunction<Double, TimedValue> {
    @Override
    public TimedValue createAccumulator() {
        return new TimedValue();
    }

    public void accumulate(TimedValue acc, Double value, Long eventMs) {
        acc.offer(value, eventMs, false);
    }

    public void merge(TimedValue acc, Iterable<TimedValue> others) {
        for (TimedValue other : others) {
            acc.offer(other.value, other.time, false);
        }
    }

    @Override
    public Double getValue(TimedValue acc) {
        return acc.value;
    }
}
