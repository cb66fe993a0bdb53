package io.kappa.udfs;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

import java.time.Instant;

/**
 * Flink scalar function: Confluent-framed Avro telemetry -> one flat ROW, with {@code dlq_reason} /
 * {@code dlq_error} set (and the measurement fields null) for a record that cannot be decoded. The JVM
 * twin of the Python decoder in udfs/avro_decoder.py; see {@link TelemetryDecoder} for the checks.
 *
 * <pre>
 *   CREATE TEMPORARY SYSTEM FUNCTION decode_telemetry AS 'io.kappa.udfs.DecodeTelemetry' LANGUAGE JAVA;
 *   SELECT decode_telemetry(payload, 'http://127.0.0.1:8081', CAST(NULL AS BIGINT)) AS t FROM src;
 *   -- the jobs' form: reference time = the Kafka record timestamp capped at the wall clock, bound in ms
 *   SELECT decode_telemetry(payload, 'http://127.0.0.1:8081', kafka_ts, 300000) AS t FROM telemetry_raw;
 * </pre>
 *
 * <p>The jobs' form shares the per-thread last decode with {@link TelemetryEventTime} (see
 * {@link LastDecode}): the event-time column and this row agree on every record, and it is decoded once.
 *
 * <p>{@code nowMs} is the reference time of the max-future check (null: the wall clock). The bound is
 * {@code max_future_ms} of the constructor, or the job parameter {@code kappa.decoder.max-future-ms}
 * ({@code pipeline.global-job-parameters}), default one day. An unreachable registry throws
 * {@link SchemaRegistryUnavailableException} so the job restarts rather than dead-lettering good data.
 *
 * <p>Declared non-deterministic (it depends on the registry and, with a null {@code nowMs}, on the clock):
 * this also keeps the planner from duplicating the call once per accessed field of the returned row.
 */
public class DecodeTelemetry extends ScalarFunction {
    private static final long serialVersionUID = 1L;
    public static final String MAX_FUTURE_PARAM = "kappa.decoder.max-future-ms";
    public static final String ROW_TYPE = "ROW<device_id STRING, site_id STRING, device_type STRING, seq BIGINT, "
            + "event_time BIGINT, status STRING, firmware_version STRING, temperature_c DOUBLE, humidity_pct DOUBLE, "
            + "pressure_hpa DOUBLE, vibration_mm_s DOUBLE, power_w DOUBLE, battery_pct DOUBLE, signal_rssi_dbm INT, "
            + "location_lat DOUBLE, location_lon DOUBLE, location_alt_m DOUBLE, uptime_s BIGINT, schema_id INT, "
            + "dlq_reason STRING, dlq_error STRING>";

    private long maxFutureMs;
    private final boolean maxFutureFixed;
    /** One decoder (lookup + writer cache) per registry URL. */
    private transient DecoderCache decoders;

    public DecodeTelemetry() {
        this.maxFutureMs = TelemetryDecoder.DAY_MS;
        this.maxFutureFixed = false;
    }

    public DecodeTelemetry(long maxFutureMs) {
        this.maxFutureMs = maxFutureMs;
        this.maxFutureFixed = true;
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        if (!maxFutureFixed) {
            String value;
            try {
                value = context.getJobParameter(MAX_FUTURE_PARAM, null);
            } catch (RuntimeException exc) {
                value = null; // e.g. inside a generated watermark generator: no job parameters there
            }
            if (value != null && !value.isBlank()) {
                maxFutureMs = Long.parseLong(value.trim());
            }
        }
        decoders = null;
    }

    public long maxFutureMs() {
        return maxFutureMs;
    }

    public @DataTypeHint(ROW_TYPE) Row eval(byte[] payload, String registryUrl, Long nowMs) {
        long now = nowMs == null ? System.currentTimeMillis() : nowMs;
        return Row.of(decoder(registryUrl).decode(payload, now));
    }

    public @DataTypeHint(ROW_TYPE) Row eval(byte[] payload, String registryUrl) {
        return eval(payload, registryUrl, (Long) null);
    }

    /** The jobs' form: reference = record timestamp capped at the wall clock, bound given per call. */
    public @DataTypeHint(ROW_TYPE) Row eval(
            byte[] payload, String registryUrl, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant recordTs, Long maxSkewMs) {
        if (maxSkewMs == null) {
            throw new IllegalArgumentException("decode_telemetry: max_skew_ms is null");
        }
        return Row.of(LastDecode.decode(decoder(registryUrl), registryUrl, payload, recordTs, maxSkewMs));
    }

    private TelemetryDecoder decoder(String registryUrl) {
        if (decoders == null) {
            decoders = new DecoderCache(maxFutureMs);
        }
        return decoders.get(registryUrl);
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
