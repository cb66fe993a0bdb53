-- reads: telemetry_ontime
-- defines: alert_thresholds_lookup, alert_readings, readings_with_thresholds
-- Benchmark baseline (bench/threshold_join_cost.py): the alerting job's thresholds as they were looked up
-- before the event-time temporal join (sql/alerts/thresholds.sql), at processing time, through a JDBC
-- lookup join on PostgreSQL's alert_thresholds (db/migrations/0002), cached 60 s. A device's own row
-- (device_id set) overrides its type's default row (device_id NULL), column by column. Not
-- deterministic (a replay gets today's rules): only the bench runs it, in place of thresholds.sql.
CREATE TABLE alert_thresholds_lookup (
  threshold_id BIGINT, device_type STRING, device_id STRING,
  overheat_temp_c DOUBLE, overheat_count INT,
  rising_delta_c DOUBLE, rising_readings INT,
  vibration_spike_mm_s DOUBLE, temp_spike_c DOUBLE, spike_window_s INT,
  low_battery_pct DOUBLE, low_battery_duration_s INT,
  silent_after_s INT, cooldown_s INT, rule_version STRING,
  PRIMARY KEY (threshold_id) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'alert_thresholds',
  'lookup.cache' = 'PARTIAL',
  'lookup.partial-cache.expire-after-write' = '60 s',
  'lookup.partial-cache.max-rows' = '10000',
  'lookup.partial-cache.cache-missing-key' = 'true',
  'lookup.max-retries' = '3'
);

-- The on-time readings with a processing-time attribute for the lookup.
CREATE TEMPORARY VIEW alert_readings AS
SELECT
  *,
  PROCTIME() AS proc_time
FROM telemetry_ontime;

-- Each reading with the thresholds in the table when it is processed.
CREATE TEMPORARY VIEW readings_with_thresholds AS
SELECT
  r.device_id, r.site_id, r.device_type, r.seq, r.event_time, r.event_ms,
  r.temperature_c, r.vibration_mm_s, r.battery_pct,
  COALESCE(o.overheat_temp_c, d.overheat_temp_c) AS overheat_temp_c,
  COALESCE(o.overheat_count, d.overheat_count) AS overheat_count,
  COALESCE(o.rising_delta_c, d.rising_delta_c) AS rising_delta_c,
  COALESCE(o.rising_readings, d.rising_readings) AS rising_readings,
  COALESCE(o.vibration_spike_mm_s, d.vibration_spike_mm_s) AS vibration_spike_mm_s,
  COALESCE(o.temp_spike_c, d.temp_spike_c) AS temp_spike_c,
  COALESCE(o.spike_window_s, d.spike_window_s) AS spike_window_s,
  COALESCE(o.low_battery_pct, d.low_battery_pct) AS low_battery_pct,
  COALESCE(o.low_battery_duration_s, d.low_battery_duration_s) AS low_battery_duration_s,
  COALESCE(o.silent_after_s, d.silent_after_s) AS silent_after_s,
  COALESCE(o.cooldown_s, d.cooldown_s) AS cooldown_s,
  COALESCE(o.rule_version, d.rule_version) AS rule_version
FROM alert_readings AS r
INNER JOIN alert_thresholds_lookup FOR SYSTEM_TIME AS OF r.proc_time AS d
  ON r.device_type = d.device_type AND d.device_id IS NULL
LEFT JOIN alert_thresholds_lookup FOR SYSTEM_TIME AS OF r.proc_time AS o
  ON r.device_type = o.device_type AND r.device_id = o.device_id;
