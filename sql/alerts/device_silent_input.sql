-- reads: readings_with_thresholds
-- defines: device_silence_input
-- DEVICE_SILENT, part 1: what the silence detector sees. MATCH_RECOGNIZE cannot match the absence
-- of readings, so this rule is a keyed process function with event-time timers
-- (udfs/device_silence.py, wired in jobs/alerts.py); it gets each on-time reading of a device with
-- the silence bound (alert_thresholds.silent_after_s) in force for it.
CREATE TEMPORARY VIEW device_silence_input AS
SELECT device_id, site_id, event_time, event_ms, silent_after_s, rule_version, cooldown_s
FROM readings_with_thresholds;
