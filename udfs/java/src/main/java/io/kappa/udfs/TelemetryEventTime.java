package io.kappa.udfs;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

import java.time.Instant;

/**
 * Flink scalar function: the event time of a Confluent-framed Avro telemetry record, for the Kafka
 * source's computed event-time column and its watermark; NULL for a record the decoder rejects,
 * including one whose event time is more than {@code max_skew_ms} ahead of its record timestamp
 * (capped at the wall clock). A NULL event time never moves a watermark, so neither an undecodable
 * record nor a far-future one can poison it.
 *
 * <pre>
 *   event_time AS telemetry_event_time(payload, 'http://127.0.0.1:8081', kafka_ts, 300000),
 *   WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
 * </pre>
 *
 * <p>It shares the per-thread last decode with {@link DecodeTelemetry}, so the watermark generator and
 * the decoding view cost one decode per record, and both see the same verdict.
 */
public class TelemetryEventTime extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    private final DecoderCache decoders = new DecoderCache();

    public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(
            byte[] payload, String registryUrl, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant recordTs, Long maxSkewMs) {
        if (maxSkewMs == null) {
            throw new IllegalArgumentException("telemetry_event_time: max_skew_ms is null");
        }
        Object[] row = LastDecode.decode(decoders.get(registryUrl), registryUrl, payload, recordTs, maxSkewMs);
        if (row[TelemetryDecoder.REASON_POS] != null) {
            return null;
        }
        return Instant.ofEpochMilli((Long) row[TelemetryDecoder.FLAT_FIELDS.indexOf("event_time")]);
    }

    @Override
    public boolean isDeterministic() {
        return false; // the registry and the wall-clock cap; also keeps the planner from folding calls
    }
}
