-- Rule thresholds, looked up in PostgreSQL (table alert_thresholds, db/migrations/0002) for every
-- reading through a JDBC lookup join at processing time: an UPDATE of alert_thresholds takes effect
-- within the lookup cache TTL (60 s), without redeploying the job. A device's own row (device_id
-- set) overrides the default row of its device type (device_id NULL), column by column.
-- Readings of a device type without a default row get no thresholds and raise no alerts.
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
