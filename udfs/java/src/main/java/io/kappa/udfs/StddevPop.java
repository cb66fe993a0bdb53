package io.kappa.udfs;

import org.apache.flink.table.functions.AggregateFunction;

/**
 * STDDEV_POP_STABLE(value): population standard deviation by Welford's online algorithm (merged
 * with Chan's formula). Flink's built-in STDDEV_POP computes sqrt((sum(x^2) - sum(x)^2/n)/n), which
 * cancels catastrophically for steady signals: identical battery readings of 80 % came out as
 * 8.5e-7 instead of 0. NULL values are ignored; no values gives NULL.
 */
public class StddevPop extends AggregateFunction<Double, StddevPop.Moments> {

    /** Count, running mean and sum of squared deviations from the mean. */
    public static class Moments {
        public long count;
        public double mean;
        public double m2;
    }

    @Override
    public Moments createAccumulator() {
        return new Moments();
    }

    public void accumulate(Moments acc, Double value) {
        if (value == null) {
            return;
        }
        acc.count++;
        double delta = value - acc.mean;
        acc.mean += delta / acc.count;
        acc.m2 += delta * (value - acc.mean);
    }

    public void merge(Moments acc, Iterable<Moments> others) {
        for (Moments other : others) {
            if (other.count == 0) {
                continue;
            }
            long total = acc.count + other.count;
            double delta = other.mean - acc.mean;
            acc.m2 += other.m2 + delta * delta * acc.count * other.count / total;
            acc.mean += delta * other.count / total;
            acc.count = total;
        }
    }

    @Override
    public Double getValue(Moments acc) {
        if (acc.count == 0) {
            return null;
        }
        return Math.sqrt(Math.max(acc.m2, 0.0) / acc.count);
    }
}
