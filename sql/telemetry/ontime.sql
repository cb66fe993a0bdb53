-- reads: telemetry_valid
-- defines: telemetry_late, telemetry_ontime
-- The alerting job's on-time readings: event time ahead of the watermark when the reading is read.
-- MATCH_RECOGNIZE and the silence detector's event-time timers drop anything behind their watermark,
-- which can only be behind this one, so a reading that passes is never dropped there. This rule
-- depends on how fast the partitions are read; the aggregation job uses lateness.sql instead (late
-- decided per partition in offset order, with allowed lateness updating fired windows).
CREATE TEMPORARY VIEW telemetry_late AS
SELECT *
FROM telemetry_valid
WHERE CURRENT_WATERMARK(event_time) IS NOT NULL AND event_time <= CURRENT_WATERMARK(event_time);

CREATE TEMPORARY VIEW telemetry_ontime AS
SELECT *
FROM telemetry_valid
WHERE CURRENT_WATERMARK(event_time) IS NULL OR event_time > CURRENT_WATERMARK(event_time);
