-- All alerts, with a deterministic id and a cool-down.
--
-- Cool-down (suppression): the id is MD5(device | type | rule_version | cool-down bucket start),
-- where the bucket start is the first event time (ms) rounded down to a multiple of cooldown_s
-- (cooldown_s = 0: the first event time itself). Every match of one type on one device whose
-- first reading falls in the same bucket gets the same id, so repeats within the bucket upsert
-- the same PostgreSQL row (the latest match in event time wins: its first/last times and values)
-- and carry the same key on the alerts topic (a compacted read gives the same one alert). A match
-- whose first reading falls in the next bucket is a new alert. Only event times are used, so a
-- replay of the same log with the same thresholds writes the same alerts with the same ids.
CREATE TEMPORARY VIEW alerts_matched AS
SELECT * FROM alerts_overheating
UNION ALL SELECT * FROM alerts_temperature_trend
UNION ALL SELECT * FROM alerts_vibration_then_heat
UNION ALL SELECT * FROM alerts_low_battery
UNION ALL SELECT * FROM alerts_device_silent;

CREATE TEMPORARY VIEW alerts_final AS
SELECT
  MD5(CONCAT_WS('|', device_id, alert_type, rule_version, CAST(bucket_ms AS STRING))) AS alert_id,
  device_id, site_id, alert_type, severity, first_event_time, last_event_time,
  trigger_json, trigger_map, rule_version
FROM (
  SELECT *,
    CASE WHEN cooldown_s > 0 THEN first_ms - MOD(first_ms, CAST(cooldown_s AS BIGINT) * 1000)
         ELSE first_ms END AS bucket_ms
  FROM alerts_matched
);
