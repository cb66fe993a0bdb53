-- reads: -
-- defines: smoke_readings
-- Source of the smoke pipeline: JSON readings from Kafka with an event-time watermark.
-- Placeholders (${...}) are filled from kappa.toml; ${source_options} adds bounded-read options.
CREATE TABLE smoke_readings (
  device_id STRING,
  temperature DOUBLE,
  ts BIGINT,
  event_time AS TO_TIMESTAMP_LTZ(ts, 3),
  WATERMARK FOR event_time AS event_time - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${smoke_topic}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.group.id' = '${group_prefix}-smoke',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'scan.watermark.idle-timeout' = '${source_idle_timeout_s} s',
  'format' = 'json'${source_options}
);
