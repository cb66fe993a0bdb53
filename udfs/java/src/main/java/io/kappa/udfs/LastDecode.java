package io.kappa.udfs;

import java.time.Instant;
import java.util.Arrays;

/**
 * The last decoded record of this thread, so that one record is decoded once although the planner calls
 * the decoding functions several times for it: once for the event-time column inside the Kafka source's
 * watermark generator, and once per branch (valid readings, dead letters) downstream in the same chained
 * task thread. A hit needs the same registry URL, the same payload bytes, the same record timestamp and
 * the same bound, so the cached answer is the answer a fresh decode would give.
 *
 * <p>The reference time of the future-event-time check is the Kafka record timestamp, capped at the wall
 * clock: deterministic in a replay for every record whose timestamp was not itself ahead of the clock
 * when it was first read, and a forged far-future record timestamp cannot widen the bound.
 */
final class LastDecode {
    private static final ThreadLocal<LastDecode> CURRENT = ThreadLocal.withInitial(LastDecode::new);

    private String url;
    private byte[] payload;
    private long recordTsMs;
    private long maxFutureMs;
    private Object[] row;

    private LastDecode() {}

    /** The decoded row (a copy) of {@code payload}; see the class comment for the reference time. */
    static Object[] decode(TelemetryDecoder decoder, String url, byte[] payload, Instant recordTs, long maxFutureMs) {
        long recordTsMs = recordTs == null ? Long.MAX_VALUE : recordTs.toEpochMilli();
        LastDecode last = CURRENT.get();
        if (last.row == null || last.recordTsMs != recordTsMs || last.maxFutureMs != maxFutureMs
                || !url.equals(last.url) || !Arrays.equals(payload, last.payload)) {
            long reference = Math.min(recordTsMs, System.currentTimeMillis());
            last.row = decoder.decode(payload, reference, maxFutureMs);
            last.url = url;
            last.payload = payload == null ? null : payload.clone();
            last.recordTsMs = recordTsMs;
            last.maxFutureMs = maxFutureMs;
        }
        return last.row.clone();
    }
}
