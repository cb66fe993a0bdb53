-- Decode every record once (decode_telemetry: Confluent wire format -> the v2 reader row, never
-- throws; a failed record carries dlq_reason and dlq_error), then split into valid readings and
-- dead letters. Nothing is skipped silently: each record ends in exactly one of the two views.
CREATE TEMPORARY VIEW telemetry_decoded AS
SELECT
  kafka_topic, kafka_partition, kafka_offset, kafka_ts, record_key, payload,
  decode_telemetry(payload, '${registry_url}', CAST(NULL AS BIGINT)) AS r
FROM telemetry_raw;

CREATE TEMPORARY VIEW telemetry_checked AS
SELECT
  kafka_topic, kafka_partition, kafka_offset, kafka_ts, record_key, payload, r,
  CASE
    WHEN r.dlq_reason IS NOT NULL THEN r.dlq_reason
    WHEN TO_TIMESTAMP_LTZ(r.event_time, 3) <> kafka_ts THEN 'EVENT_TIME_MISMATCH'
  END AS dlq_reason,
  CASE
    WHEN r.dlq_reason IS NOT NULL THEN r.dlq_error
    WHEN TO_TIMESTAMP_LTZ(r.event_time, 3) <> kafka_ts
      THEN 'event_time ' || CAST(r.event_time AS STRING) || ' differs from the Kafka record timestamp'
  END AS dlq_error
FROM telemetry_decoded;

CREATE TEMPORARY VIEW telemetry_dead_letters AS
SELECT kafka_topic, kafka_partition, kafka_offset, kafka_ts, dlq_reason, dlq_error, record_key, payload
FROM telemetry_checked
WHERE dlq_reason IS NOT NULL;

CREATE TEMPORARY VIEW telemetry_valid AS
SELECT
  r.device_id AS device_id, r.site_id AS site_id, r.device_type AS device_type, r.seq AS seq,
  kafka_ts AS event_time, r.event_time AS event_ms, r.status AS status, r.firmware_version AS firmware_version,
  r.temperature_c AS temperature_c, r.humidity_pct AS humidity_pct, r.pressure_hpa AS pressure_hpa,
  r.vibration_mm_s AS vibration_mm_s, r.power_w AS power_w, r.battery_pct AS battery_pct,
  r.signal_rssi_dbm AS signal_rssi_dbm, r.schema_id AS schema_id,
  kafka_partition, kafka_offset
FROM telemetry_checked
WHERE dlq_reason IS NULL;
