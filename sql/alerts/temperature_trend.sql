-- reads: readings_with_thresholds
-- defines: alerts_temperature_trend
-- TEMPERATURE_TREND: temperature strictly rising reading after reading (a re-sent duplicate, same
-- seq, neither breaks nor extends the run) over at least rising_readings readings, by at least
-- rising_delta_c in total (last - first). Fires at the first reading where both hold.
-- (The previous reading is LAST(UP.x, 1), or START_ for the first UP: Flink 2.0 has no PREV here.)
-- The SQL lint's Flink dialect cannot parse the reluctant quantifier *? of PATTERN, and then reads
-- MATCH_RECOGNIZE as a table alias: parse errors and the alias rules off from here.
-- noqa: disable=PRS,AL01,AL05
CREATE TEMPORARY VIEW alerts_temperature_trend AS
SELECT
  device_id, site_id, 'TEMPERATURE_TREND' AS alert_type, 'WARNING' AS severity,
  first_event_time, last_event_time, first_ms, rule_version, cooldown_s,
  JSON_OBJECT('first_temperature_c' VALUE first_temperature_c, 'last_temperature_c' VALUE last_temperature_c,
              'rise_c' VALUE last_temperature_c - first_temperature_c, 'min_rise_c' VALUE min_rise_c,
              'readings' VALUE CAST(readings AS DOUBLE)) AS trigger_json,
  MAP['first_temperature_c', first_temperature_c, 'last_temperature_c', last_temperature_c,
      'rise_c', last_temperature_c - first_temperature_c, 'min_rise_c', min_rise_c,
      'readings', CAST(readings AS DOUBLE)] AS trigger_map
FROM readings_with_thresholds
MATCH_RECOGNIZE (
  PARTITION BY device_id
  ORDER BY event_time
  MEASURES
    START_.site_id AS site_id,
    CAST(START_.event_time AS TIMESTAMP(3)) AS first_event_time,
    START_.event_ms AS first_ms,
    CAST(TOP.event_time AS TIMESTAMP(3)) AS last_event_time,
    START_.temperature_c AS first_temperature_c,
    TOP.temperature_c AS last_temperature_c,
    TOP.rising_delta_c AS min_rise_c,
    TOP.seq - START_.seq + 1 AS readings,
    TOP.rule_version AS rule_version,
    TOP.cooldown_s AS cooldown_s
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (START_ UP*? TOP) WITHIN INTERVAL '30' MINUTE
  DEFINE
    START_ AS START_.temperature_c IS NOT NULL,
    UP AS UP.temperature_c > COALESCE(LAST(UP.temperature_c, 1), START_.temperature_c)
          OR UP.seq = COALESCE(LAST(UP.seq, 1), START_.seq),
    TOP AS (TOP.temperature_c > COALESCE(LAST(UP.temperature_c), START_.temperature_c)
            OR TOP.seq = COALESCE(LAST(UP.seq), START_.seq))
           AND TOP.seq - START_.seq + 1 >= TOP.rising_readings
           AND TOP.temperature_c - START_.temperature_c >= TOP.rising_delta_c
);
