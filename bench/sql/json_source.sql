-- reads: -
-- defines: telemetry_json, telemetry_valid
-- Benchmark baseline: the same readings as JSON, read with Flink's native JSON format, exposed as
-- the same telemetry_valid view the Avro path produces (then the same SQL runs on both). Event time
-- comes from the payload on both paths, as a computed column the Kafka source's watermark uses.
CREATE TABLE telemetry_json (
  device_id STRING, site_id STRING, device_type STRING, seq BIGINT, event_time BIGINT, status STRING,
  firmware_version STRING, temperature_c DOUBLE, humidity_pct DOUBLE, pressure_hpa DOUBLE,
  vibration_mm_s DOUBLE, power_w DOUBLE, battery_pct DOUBLE, signal_rssi_dbm INT,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  event_ts AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR event_ts AS event_ts - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${telemetry_topic}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.group.id' = '${group_prefix}-bench-json',
  'scan.startup.mode' = 'earliest-offset',
  'scan.watermark.idle-timeout' = '${source_idle_timeout_s} s',
  'format' = 'json'${source_options}
);

CREATE TEMPORARY VIEW telemetry_valid AS
SELECT device_id, site_id, device_type, seq, event_ts AS event_time, event_time AS event_ms, status,
       firmware_version, temperature_c, humidity_pct, pressure_hpa, vibration_mm_s, power_w, battery_pct,
       signal_rssi_dbm, CAST(NULL AS BIGINT) AS uptime_s, CAST(NULL AS INT) AS schema_id, kafka_partition, kafka_offset
FROM telemetry_json;
