-- reads: -
-- defines: telemetry_raw
-- The telemetry topic as raw bytes plus Kafka metadata, with the event time taken from the payload:
-- the reading's own event_time, decoded by telemetry_event_time() (udfs/java). The Kafka record
-- timestamp (kafka_ts) is metadata only: producers leave it to their client's clock, as most do.
--
-- The watermark is generated per partition inside the Kafka source from that computed column, and
-- idle partitions are skipped after source_idle_timeout_s. Watermark poisoning is impossible: the
-- function returns NULL (and a NULL never moves a watermark) for a record that does not decode, or
-- whose event time is more than max_clock_skew_ms ahead of its record timestamp capped at the wall
-- clock; decode.sql dead-letters the same records with their reason (FUTURE_EVENT_TIME, ...). Both
-- share one decode per record (a per-thread cache in the Java functions), so they always agree.
CREATE TABLE telemetry_raw (
  record_key BYTES,
  payload BYTES,
  kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  event_time AS telemetry_event_time(payload, '${registry_url}', kafka_ts, CAST(${max_clock_skew_ms} AS BIGINT)),
  WATERMARK FOR event_time AS event_time - INTERVAL '${watermark_delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${telemetry_topic}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.group.id' = '${group_prefix}-${job_name}${output_suffix}',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'scan.watermark.idle-timeout' = '${source_idle_timeout_s} s',
  'key.format' = 'raw',
  'key.fields' = 'record_key',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'${source_options}
);
