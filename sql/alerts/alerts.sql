-- reads: alerts_overheating, alerts_temperature_trend, alerts_vibration_then_heat, alerts_low_battery
-- reads: alerts_device_silent
-- defines: alerts_matched
-- All rule matches in one stream: the four MATCH_RECOGNIZE patterns and DEVICE_SILENT. The
-- cool-down (udfs/alert_cooldown.py, wired in jobs/alerts.py) decides which of them are alerts; the
-- result is the view alerts_raised, read by raised.sql.
CREATE TEMPORARY VIEW alerts_matched AS
SELECT * FROM alerts_overheating
UNION ALL SELECT * FROM alerts_temperature_trend
UNION ALL SELECT * FROM alerts_vibration_then_heat
UNION ALL SELECT * FROM alerts_low_battery
UNION ALL SELECT * FROM alerts_device_silent;
