-- reads: device_silences
-- defines: alerts_device_silent
-- DEVICE_SILENT, part 2: the detector's output (view device_silences: device_id, site_id, first_ms,
-- last_ms, silent_after_s, rule_version, cooldown_s, resolved) as alerts.
--
-- first_event_time is the last reading before the gap, so the open alert (raised when the watermark
-- passes last reading + silent_after_s; last_event_time = that deadline) and its resolution (the
-- device spoke again; last_event_time = that reading) share one alert id: PostgreSQL keeps one row
-- that ends resolved, the alerts topic gets both records under the same key.
CREATE TEMPORARY VIEW alerts_device_silent AS
SELECT
  device_id, site_id, 'DEVICE_SILENT' AS alert_type, 'WARNING' AS severity,
  CAST(TO_TIMESTAMP_LTZ(first_ms, 3) AS TIMESTAMP(3)) AS first_event_time,
  CAST(TO_TIMESTAMP_LTZ(last_ms, 3) AS TIMESTAMP(3)) AS last_event_time,
  first_ms, rule_version, cooldown_s,
  JSON_OBJECT('silent_s' VALUE silent_s, 'silent_after_s' VALUE CAST(silent_after_s AS DOUBLE),
              'resolved' VALUE resolved_flag) AS trigger_json,
  MAP['silent_s', silent_s, 'silent_after_s', CAST(silent_after_s AS DOUBLE),
      'resolved', resolved_flag] AS trigger_map
FROM (
  SELECT *, CAST(last_ms - first_ms AS DOUBLE) / 1000 AS silent_s,
         CASE WHEN resolved THEN 1.0 ELSE 0.0 END AS resolved_flag
  FROM device_silences
);
