-- Late readings: event time at or behind the watermark when the reading is read. Such a reading
-- could reach a window that has already fired, so it never enters a window: it is routed to the
-- late output instead (counted, not dropped). A reading that passes this test is never late at
-- the window operator, whose watermark can only be behind this one.
CREATE TEMPORARY VIEW telemetry_late AS
SELECT *
FROM telemetry_valid
WHERE CURRENT_WATERMARK(event_time) IS NOT NULL AND event_time <= CURRENT_WATERMARK(event_time);

CREATE TEMPORARY VIEW telemetry_ontime AS
SELECT *
FROM telemetry_valid
WHERE CURRENT_WATERMARK(event_time) IS NULL OR event_time > CURRENT_WATERMARK(event_time);
