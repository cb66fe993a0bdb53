-- reads: smoke_readings
-- defines: -
-- writes: smoke_counts_sink
-- Per-device one-minute tumbling windows over event time.
-- The SQL lint wants a space in DESCRIPTOR (event_time), which Flink's own docs never write.
-- noqa: disable=LT01
INSERT INTO smoke_counts_sink
SELECT
  device_id,
  window_start,
  window_end,
  COUNT(*) AS readings,
  AVG(temperature) AS avg_temperature
FROM TABLE(TUMBLE(TABLE smoke_readings, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY device_id, window_start, window_end;
