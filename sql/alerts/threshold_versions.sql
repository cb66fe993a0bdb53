-- reads: -
-- defines: alert_threshold_versions
-- Alert thresholds as a versioned table on the rules topic (kappa/rules, `kappa rules set`): one record
-- per version of a rule key, valid from its valid_from (event time). rule_key is the device type for
-- the type's default and '<device_type>/<device_id>' for a device's override (a temporal join needs the
-- versioned table's whole primary key in its equality condition, which a constant cannot be).
-- Override columns left NULL fall back to the default's, column by column (thresholds.sql).
--
-- upsert-kafka (JSON value, raw key): every record is kept in the topic (retention.ms=-1), and the
-- temporal join keeps each version by its valid_from, so a version written later with an earlier
-- valid_from (back-dated) applies from its valid_from up to the next version.
--
-- The watermark never moves the join forward by itself (it stays at the epoch): otherwise the join
-- could apply a version before an earlier, back-dated one is read, and a replay would depend on read
-- order. What releases the join: in a bounded run (replay, tests) the source reaching the topic's end
-- (watermark MAX; reference_options); in a live job the source being idle for
-- reference_idle_timeout_s (a one-off delay at start: it has read every version by then). A version
-- written while the job runs applies to every reading the join has not yet passed: a reading at or
-- after its valid_from that is newer than the join's watermark.
CREATE TABLE alert_threshold_versions (
  rule_key STRING NOT NULL,
  device_type STRING,
  device_id STRING,  -- NULL in the type's default
  valid_from_ms BIGINT,
  overheat_temp_c DOUBLE, overheat_count INT,
  rising_delta_c DOUBLE, rising_readings INT,
  vibration_spike_mm_s DOUBLE, temp_spike_c DOUBLE, spike_window_s INT,
  low_battery_pct DOUBLE, low_battery_duration_s INT,
  silent_after_s INT, cooldown_s INT, rule_version STRING,
  valid_from AS TO_TIMESTAMP_LTZ(valid_from_ms, 3),
  WATERMARK FOR valid_from AS TO_TIMESTAMP_LTZ(0, 3),
  PRIMARY KEY (rule_key) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${rules_topic}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.group.id' = '${group_prefix}-${job_name}${output_suffix}-rules',
  'key.format' = 'raw',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'scan.watermark.idle-timeout' = '${reference_idle_timeout_s} s'${reference_options}
);
