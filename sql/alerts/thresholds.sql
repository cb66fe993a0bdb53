-- Each reading with the rule thresholds in force for its device, looked up at processing time in
-- alert_thresholds_lookup (declared in thresholds_lookup.sql: JDBC on PostgreSQL in the job; a golden
-- fixture gives its own rows under that name instead, see kappa/sqltest.py).

-- The on-time readings with a processing-time attribute for the lookup.
CREATE TEMPORARY VIEW alert_readings AS
SELECT *, PROCTIME() AS proc_time FROM telemetry_ontime;

-- Each reading with the thresholds in force for its device.
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
JOIN alert_thresholds_lookup FOR SYSTEM_TIME AS OF r.proc_time AS d
  ON d.device_type = r.device_type AND d.device_id IS NULL
LEFT JOIN alert_thresholds_lookup FOR SYSTEM_TIME AS OF r.proc_time AS o
  ON o.device_type = r.device_type AND o.device_id = r.device_id;
