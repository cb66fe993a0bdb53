-- reads: readings_with_thresholds
-- defines: alerts_low_battery
-- LOW_BATTERY: battery below low_battery_pct on consecutive readings for at least
-- low_battery_duration_s seconds (from the first low reading). Fires at the first reading where
-- the duration is reached; a reading at or above the threshold ends the run.
-- The SQL lint's Flink dialect cannot parse the reluctant quantifier *? of PATTERN, and then reads
-- MATCH_RECOGNIZE as a table alias: parse errors and the alias rules off from here.
-- noqa: disable=PRS,AL01,AL05
CREATE TEMPORARY VIEW alerts_low_battery AS
SELECT
  device_id, site_id, 'LOW_BATTERY' AS alert_type, 'WARNING' AS severity,
  first_event_time, last_event_time, first_ms, rule_version, cooldown_s,
  JSON_OBJECT('first_battery_pct' VALUE first_battery_pct, 'last_battery_pct' VALUE last_battery_pct,
              'threshold_pct' VALUE threshold_pct, 'duration_s' VALUE duration_s) AS trigger_json,
  MAP['first_battery_pct', first_battery_pct, 'last_battery_pct', last_battery_pct,
      'threshold_pct', threshold_pct, 'duration_s', duration_s] AS trigger_map
FROM readings_with_thresholds
MATCH_RECOGNIZE (
  PARTITION BY device_id
  ORDER BY event_time
  MEASURES
    FIRST_LOW.site_id AS site_id,
    CAST(FIRST_LOW.event_time AS TIMESTAMP(3)) AS first_event_time,
    FIRST_LOW.event_ms AS first_ms,
    CAST(SUSTAINED.event_time AS TIMESTAMP(3)) AS last_event_time,
    FIRST_LOW.battery_pct AS first_battery_pct,
    SUSTAINED.battery_pct AS last_battery_pct,
    SUSTAINED.low_battery_pct AS threshold_pct,
    CAST(SUSTAINED.event_ms - FIRST_LOW.event_ms AS DOUBLE) / 1000 AS duration_s,
    SUSTAINED.rule_version AS rule_version,
    SUSTAINED.cooldown_s AS cooldown_s
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (FIRST_LOW LOW*? SUSTAINED) WITHIN INTERVAL '1' HOUR
  DEFINE
    FIRST_LOW AS FIRST_LOW.battery_pct < FIRST_LOW.low_battery_pct,
    LOW AS LOW.battery_pct < LOW.low_battery_pct,
    SUSTAINED AS SUSTAINED.battery_pct < SUSTAINED.low_battery_pct
                 AND SUSTAINED.event_ms - FIRST_LOW.event_ms
                     >= CAST(SUSTAINED.low_battery_duration_s AS BIGINT) * 1000
);
