-- Per-device one-minute tumbling windows over event time: what a maintenance engineer looks at.
-- first/last are by event time (FIRST_BY_TIME / LAST_BY_TIME, not arrival order), stddev is the
-- population standard deviation; measurements a device type lacks stay NULL.
CREATE TEMPORARY VIEW device_windows_1m AS
SELECT
  device_id, site_id, device_type,
  window_start, window_end,
  COUNT(*) AS reading_count,
  MIN(temperature_c) AS temp_min, MAX(temperature_c) AS temp_max, AVG(temperature_c) AS temp_avg,
  FIRST_BY_TIME(temperature_c, event_ms) AS temp_first, LAST_BY_TIME(temperature_c, event_ms) AS temp_last,
  STDDEV_POP_STABLE(temperature_c) AS temp_stddev,
  MIN(humidity_pct) AS humidity_min, MAX(humidity_pct) AS humidity_max, AVG(humidity_pct) AS humidity_avg,
  FIRST_BY_TIME(humidity_pct, event_ms) AS humidity_first, LAST_BY_TIME(humidity_pct, event_ms) AS humidity_last,
  STDDEV_POP_STABLE(humidity_pct) AS humidity_stddev,
  MIN(vibration_mm_s) AS vibration_min, MAX(vibration_mm_s) AS vibration_max, AVG(vibration_mm_s) AS vibration_avg,
  FIRST_BY_TIME(vibration_mm_s, event_ms) AS vibration_first, LAST_BY_TIME(vibration_mm_s, event_ms) AS vibration_last,
  STDDEV_POP_STABLE(vibration_mm_s) AS vibration_stddev,
  MIN(battery_pct) AS battery_min, MAX(battery_pct) AS battery_max, AVG(battery_pct) AS battery_avg,
  FIRST_BY_TIME(battery_pct, event_ms) AS battery_first, LAST_BY_TIME(battery_pct, event_ms) AS battery_last,
  STDDEV_POP_STABLE(battery_pct) AS battery_stddev,
  MIN(event_time) AS first_event_time, MAX(event_time) AS last_event_time
FROM readings_1m
GROUP BY device_id, site_id, device_type, window_start, window_end;

-- Per-site five-minute windows: how a plant is doing.
CREATE TEMPORARY VIEW site_windows_5m AS
SELECT
  site_id, window_start, window_end,
  COUNT(DISTINCT device_id) AS device_count,
  COUNT(*) AS reading_count,
  AVG(temperature_c) AS temp_avg, MIN(temperature_c) AS temp_min, MAX(temperature_c) AS temp_max,
  AVG(humidity_pct) AS humidity_avg, MAX(vibration_mm_s) AS vibration_max, MIN(battery_pct) AS battery_min
FROM readings_5m
GROUP BY site_id, window_start, window_end;

-- Re-sent copies dropped per device and minute (for the accounting: read = aggregated +
-- dead letters + late + duplicates).
CREATE TEMPORARY VIEW duplicate_counts_1m AS
SELECT device_id, window_start, window_end, COUNT(*) - COUNT(DISTINCT seq) AS duplicate_count
FROM TABLE(TUMBLE(TABLE telemetry_ontime, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY device_id, window_start, window_end
HAVING COUNT(*) > COUNT(DISTINCT seq);
