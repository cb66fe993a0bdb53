-- The telemetry topic as raw bytes plus Kafka metadata. Event time is the Kafka record timestamp,
-- which producers set to the reading's event time (decode.sql dead-letters records where the two
-- disagree), so watermarks are generated per partition inside the Kafka source, idle partitions
-- are skipped after source_idle_timeout_s, and nothing is decoded twice.
CREATE TABLE telemetry_raw (
  record_key BYTES,
  payload BYTES,
  kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  WATERMARK FOR kafka_ts AS kafka_ts - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${telemetry_topic}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}',
  'properties.group.id' = '${group_prefix}-${job_name}${output_suffix}',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'scan.watermark.idle-timeout' = '${source_idle_timeout_s} s',
  'key.format' = 'raw',
  'key.fields' = 'record_key',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'${source_options}
);
