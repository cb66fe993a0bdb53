-- Accounting outputs of the aggregation job (jobs/aggregate.py): together with device_agg_1m and
-- dead_letters they account for every record read: read = aggregated + dead letters + late + duplicates.

-- One row per reading that arrived at or behind the watermark (never aggregated, never lost).
CREATE TABLE IF NOT EXISTS late_readings (
  device_id       TEXT      NOT NULL,
  seq             BIGINT    NOT NULL,
  event_time      TIMESTAMP NOT NULL,  -- UTC
  kafka_partition INTEGER   NOT NULL,
  kafka_offset    BIGINT    NOT NULL,
  PRIMARY KEY (device_id, seq, kafka_partition, kafka_offset)
);

-- Re-sent copies (same device and sequence number) dropped, per device and minute of event time.
CREATE TABLE IF NOT EXISTS duplicates_1m (
  device_id       TEXT      NOT NULL,
  window_start    TIMESTAMP NOT NULL,
  window_end      TIMESTAMP NOT NULL,
  duplicate_count BIGINT    NOT NULL,
  PRIMARY KEY (device_id, window_start)
);
