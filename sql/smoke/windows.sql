-- Per-device one-minute tumbling windows over event time.
INSERT INTO smoke_counts_sink
SELECT
  device_id,
  window_start,
  window_end,
  COUNT(*) AS readings,
  AVG(temperature) AS avg_temperature
FROM TABLE(TUMBLE(TABLE smoke_readings, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY device_id, window_start, window_end;
