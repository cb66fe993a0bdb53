-- reads: telemetry_raw
-- defines: telemetry_decoded, telemetry_dead_letters, telemetry_valid
-- Decode every record (decode_telemetry: Confluent wire format -> the v3 reader row, never throws; a
-- failed record carries dlq_reason and dlq_error), then split into valid readings and dead letters.
-- Nothing is skipped silently: each record ends in exactly one of the two views. The reference time
-- of the future-event-time check is the record timestamp capped at the wall clock, as in source.sql,
-- so a record whose event time is NULL there is a dead letter here, and the other way round.
CREATE TEMPORARY VIEW telemetry_decoded AS
SELECT
  kafka_topic, kafka_partition, kafka_offset, kafka_ts, record_key, payload, event_time,
  decode_telemetry(payload, '${registry_url}', kafka_ts, CAST(${max_clock_skew_ms} AS BIGINT)) AS r
FROM telemetry_raw;

-- An OVERSIZED record (over max_record_bytes of schemas/avro/telemetry/limits.json) is dead-lettered
-- without its payload, and any dead letter without a key over max_key_bytes: every dead letter then
-- fits in one Kafka record, so the dead-letter producer never fails (its partition and offset say
-- where the original is).
-- r is a ROW column: the SQL lint takes r.x for a column of a table r that is not there.
-- noqa: disable=RF01,RF03
CREATE TEMPORARY VIEW telemetry_dead_letters AS
SELECT kafka_topic, kafka_partition, kafka_offset, kafka_ts,
       COALESCE(r.dlq_reason, 'NO_EVENT_TIME') AS dlq_reason,
       COALESCE(r.dlq_error, 'the record has no event time') AS dlq_error,
       CASE WHEN BYTE_LENGTH(record_key) > ${max_key_bytes} THEN CAST(NULL AS BYTES) ELSE record_key END AS record_key,
       CASE WHEN r.dlq_reason = 'OVERSIZED' THEN CAST(NULL AS BYTES) ELSE payload END AS payload
FROM telemetry_decoded
WHERE r.dlq_reason IS NOT NULL OR event_time IS NULL;

CREATE TEMPORARY VIEW telemetry_valid AS
SELECT
  r.device_id AS device_id, r.site_id AS site_id, r.device_type AS device_type, r.seq AS seq,
  event_time, r.event_time AS event_ms, r.status AS status, r.firmware_version AS firmware_version,
  r.temperature_c AS temperature_c, r.humidity_pct AS humidity_pct, r.pressure_hpa AS pressure_hpa,
  r.vibration_mm_s AS vibration_mm_s, r.power_w AS power_w, r.battery_pct AS battery_pct,
  r.signal_rssi_dbm AS signal_rssi_dbm, r.uptime_s AS uptime_s, r.schema_id AS schema_id,
  kafka_partition, kafka_offset
FROM telemetry_decoded
WHERE r.dlq_reason IS NULL AND event_time IS NOT NULL;
