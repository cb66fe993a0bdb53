-- reads: readings_with_thresholds
-- defines: alerts_vibration_then_heat
-- VIBRATION_THEN_HEAT: a vibration reading above vibration_spike_mm_s followed, within
-- spike_window_s seconds, by a temperature reading above temp_spike_c (any readings between).
-- The SQL lint's Flink dialect cannot parse the reluctant quantifier *? of PATTERN, and then reads
-- MATCH_RECOGNIZE as a table alias: parse errors and the alias rules off from here.
-- noqa: disable=PRS,AL01,AL05
CREATE TEMPORARY VIEW alerts_vibration_then_heat AS
SELECT
  device_id, site_id, 'VIBRATION_THEN_HEAT' AS alert_type, 'CRITICAL' AS severity,
  first_event_time, last_event_time, first_ms, rule_version, cooldown_s,
  JSON_OBJECT('vibration_mm_s' VALUE vibration_mm_s, 'vibration_threshold_mm_s' VALUE vibration_threshold_mm_s,
              'temperature_c' VALUE temperature_c, 'temperature_threshold_c' VALUE temperature_threshold_c,
              'within_s' VALUE within_s) AS trigger_json,
  MAP['vibration_mm_s', vibration_mm_s, 'vibration_threshold_mm_s', vibration_threshold_mm_s,
      'temperature_c', temperature_c, 'temperature_threshold_c', temperature_threshold_c,
      'within_s', within_s] AS trigger_map
FROM readings_with_thresholds
MATCH_RECOGNIZE (
  PARTITION BY device_id
  ORDER BY event_time
  MEASURES
    SPIKE.site_id AS site_id,
    CAST(SPIKE.event_time AS TIMESTAMP(3)) AS first_event_time,
    SPIKE.event_ms AS first_ms,
    CAST(HEAT.event_time AS TIMESTAMP(3)) AS last_event_time,
    SPIKE.vibration_mm_s AS vibration_mm_s,
    SPIKE.vibration_spike_mm_s AS vibration_threshold_mm_s,
    HEAT.temperature_c AS temperature_c,
    HEAT.temp_spike_c AS temperature_threshold_c,
    CAST(HEAT.spike_window_s AS DOUBLE) AS within_s,
    HEAT.rule_version AS rule_version,
    HEAT.cooldown_s AS cooldown_s
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (SPIKE BETWEEN_*? HEAT) WITHIN INTERVAL '10' MINUTE
  DEFINE
    SPIKE AS SPIKE.vibration_mm_s > SPIKE.vibration_spike_mm_s,
    HEAT AS HEAT.temperature_c > HEAT.temp_spike_c
            AND HEAT.event_ms - SPIKE.event_ms <= CAST(HEAT.spike_window_s AS BIGINT) * 1000
);
