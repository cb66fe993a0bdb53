-- reads: alerts_raised
-- defines: alerts_final
-- The alerts that passed the cool-down (view alerts_raised), with their deterministic id.
--
-- Cool-down (suppression): after an alert of one type on one device, a match of the same type on
-- that device whose first reading is earlier than the alert's last_event_time + cooldown_s raises
-- nothing (alert_thresholds.cooldown_s; 0 = every match is an alert). Event time only, so a replay
-- of the same log suppresses the same matches.
--
-- The id is MD5(device | type | rule_version | first event ms): the same match always gets the same
-- id, so a restart or a replay rewrites the PostgreSQL row instead of adding one. A DEVICE_SILENT
-- alert is written twice under one id (open, then resolved: the same first reading).
CREATE TEMPORARY VIEW alerts_final AS
SELECT
  MD5(CONCAT_WS('|', device_id, alert_type, rule_version, CAST(first_ms AS STRING))) AS alert_id,
  device_id, site_id, alert_type, severity,
  CAST(first_event_time AS TIMESTAMP(3)) AS first_event_time,
  CAST(last_event_time AS TIMESTAMP(3)) AS last_event_time,
  trigger_json, trigger_map, rule_version
FROM alerts_raised;
