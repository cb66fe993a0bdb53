-- reads: readings_with_thresholds
-- defines: alerts_overheating
-- OVERHEATING: overheat_count consecutive readings of a device above overheat_temp_c of its type,
-- the whole run within 5 minutes. Readings are counted by sequence number (last seq - first seq + 1),
-- so a re-sent duplicate never counts twice. The alert fires at the N-th reading (reluctant HOT*?),
-- and the next alert can only start after it (AFTER MATCH SKIP PAST LAST ROW).
-- The SQL lint's Flink dialect cannot parse the reluctant quantifier *? of PATTERN, and then reads
-- MATCH_RECOGNIZE as a table alias: parse errors and the alias rules off from here.
-- noqa: disable=PRS,AL01,AL05
CREATE TEMPORARY VIEW alerts_overheating AS
SELECT
  device_id, site_id, 'OVERHEATING' AS alert_type, 'CRITICAL' AS severity,
  first_event_time, last_event_time, first_ms, rule_version, cooldown_s,
  JSON_OBJECT('max_temperature_c' VALUE max_temperature_c, 'threshold_c' VALUE threshold_c,
              'readings' VALUE CAST(readings AS DOUBLE)) AS trigger_json,
  MAP['max_temperature_c', max_temperature_c, 'threshold_c', threshold_c,
      'readings', CAST(readings AS DOUBLE)] AS trigger_map
FROM readings_with_thresholds
MATCH_RECOGNIZE (
  PARTITION BY device_id
  ORDER BY event_time
  MEASURES
    FIRST_HOT.site_id AS site_id,
    CAST(FIRST_HOT.event_time AS TIMESTAMP(3)) AS first_event_time,
    FIRST_HOT.event_ms AS first_ms,
    CAST(NTH.event_time AS TIMESTAMP(3)) AS last_event_time,
    GREATEST(FIRST_HOT.temperature_c, COALESCE(MAX(HOT.temperature_c), FIRST_HOT.temperature_c),
             NTH.temperature_c) AS max_temperature_c,
    NTH.overheat_temp_c AS threshold_c,
    NTH.seq - FIRST_HOT.seq + 1 AS readings,
    NTH.rule_version AS rule_version,
    NTH.cooldown_s AS cooldown_s
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (FIRST_HOT HOT*? NTH) WITHIN INTERVAL '5' MINUTE
  DEFINE
    FIRST_HOT AS FIRST_HOT.temperature_c > FIRST_HOT.overheat_temp_c,
    HOT AS HOT.temperature_c > HOT.overheat_temp_c,
    NTH AS NTH.temperature_c > NTH.overheat_temp_c
           AND NTH.seq - FIRST_HOT.seq + 1 >= NTH.overheat_count
);
