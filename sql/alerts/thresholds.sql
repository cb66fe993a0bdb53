-- reads: telemetry_ontime, alert_threshold_versions
-- defines: alert_readings, readings_with_thresholds
-- Each reading with the rule thresholds in force for its device AT THE READING'S EVENT TIME: an
-- event-time temporal join against the versioned table alert_threshold_versions (declared in
-- threshold_versions.sql on the rules topic; a golden fixture gives its own rows under that name,
-- see kappa/sqltest.py). The same offsets therefore get the same thresholds in a live run and in any
-- replay, whatever rules were written since with a later valid_from.
--
-- A device's own version (rule_key '<type>/<device>') overrides the default version of its type
-- (rule_key '<type>'), column by column. Every type's default has a version valid from the epoch
-- (kappa.rules seeds it), so a reading older than the first change gets that default, explicitly.
-- Readings of a device type without a default get no thresholds and raise no alerts.
CREATE TEMPORARY VIEW alert_readings AS
SELECT *, device_type AS default_rule_key, device_type || '/' || device_id AS device_rule_key
FROM telemetry_ontime;

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
JOIN alert_threshold_versions FOR SYSTEM_TIME AS OF r.event_time AS d
  ON d.rule_key = r.default_rule_key
LEFT JOIN alert_threshold_versions FOR SYSTEM_TIME AS OF r.event_time AS o
  ON o.rule_key = r.device_rule_key;
