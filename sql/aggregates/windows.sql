-- reads: readings_with_metadata, resent_copies
-- defines: device_windows_1m, site_windows_5m, duplicate_counts_1m
-- Windows with allowed lateness. Group windows (GROUP BY TUMBLE(...)), not window table functions:
-- only they take Flink's table.exec.emit.allow-lateness / late-fire options (set by kappa.lateness
-- from job.allowed_lateness_s). A window fires once when the watermark passes its end (+I), then each
-- reading that arrives for it within allowed_lateness fires it again (-U old row, +U new row); its
-- state is dropped when the watermark passes end + allowed_lateness. lateness.sql routes late every
-- reading a window would drop, so none is dropped silently.

-- Per-device one-minute tumbling windows over event time: what a maintenance engineer looks at.
-- first/last are by event time (FIRST_BY_TIME / LAST_BY_TIME, not arrival order), stddev is the
-- population standard deviation; measurements a device type lacks stay NULL.
-- Site, type and model are the device's metadata as of its readings (devices.sql,
-- readings_with_metadata); a window carries those of its FIRST reading by event time (ties: the
-- smallest value), so a device moved (or given another model) in the middle of a minute belongs to the
-- new site from the next window on. Written as the MIN of '<event ms, 15 digits><site>' minus its
-- prefix: a plain aggregate, no Java function. Readings of one event time join the same version, so
-- the three come from one version.
-- device_model is NULL when that first reading has no model: no registry version was in force at its
-- event time (readings do not send a model; the payload default has none) or the version has none. A
-- plain '<ms>' || device_model would be NULL for such a reading and MIN would skip it, taking the model
-- of a later reading instead (and of another version than the site's): so a reading's model is
-- encoded '<ms>=<model>', or '<ms>-' without one ('-' sorts before '=', so at one event time no model
-- comes first), and the '-' is turned back into NULL.
-- Grouped by device only, not by site and type: the window's key is then the sinks' key (device,
-- window start), so an update reaches them as the new row alone (+U). Grouped by site and type too,
-- the planner sent a retraction first (-U), which the upsert sinks write as a delete (a tombstone in
-- the topic) when a flush falls between the two.
CREATE TEMPORARY VIEW device_windows_1m AS
SELECT
  device_id,
  SUBSTRING(MIN(LPAD(CAST(event_ms AS STRING), 15, '0') || site_id) FROM 16) AS site_id,
  SUBSTRING(MIN(LPAD(CAST(event_ms AS STRING), 15, '0') || device_type) FROM 16) AS device_type,
  SUBSTRING(NULLIF(SUBSTRING(MIN(LPAD(CAST(event_ms AS STRING), 15, '0') || COALESCE('=' || device_model, '-'))
    FROM 16), '-') FROM 2) AS device_model,
  TUMBLE_START(event_time, INTERVAL '1' MINUTE) AS window_start,
  TUMBLE_END(event_time, INTERVAL '1' MINUTE) AS window_end,
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
FROM readings_with_metadata
GROUP BY device_id, TUMBLE(event_time, INTERVAL '1' MINUTE);

-- Per-site five-minute windows: how a plant is doing. A reading counts for the site its device was at
-- when it was taken (readings_with_metadata).
CREATE TEMPORARY VIEW site_windows_5m AS
SELECT
  site_id,
  TUMBLE_START(event_time, INTERVAL '5' MINUTE) AS window_start,
  TUMBLE_END(event_time, INTERVAL '5' MINUTE) AS window_end,
  COUNT(DISTINCT device_id) AS device_count,
  COUNT(*) AS reading_count,
  AVG(temperature_c) AS temp_avg, MIN(temperature_c) AS temp_min, MAX(temperature_c) AS temp_max,
  AVG(humidity_pct) AS humidity_avg, MAX(vibration_mm_s) AS vibration_max, MIN(battery_pct) AS battery_min
FROM readings_with_metadata
GROUP BY site_id, TUMBLE(event_time, INTERVAL '5' MINUTE);

-- Re-sent copies dropped per device and minute (for the accounting: read = aggregated +
-- dead letters + late + duplicates).
CREATE TEMPORARY VIEW duplicate_counts_1m AS
SELECT device_id,
  TUMBLE_START(event_time, INTERVAL '1' MINUTE) AS window_start,
  TUMBLE_END(event_time, INTERVAL '1' MINUTE) AS window_end,
  COUNT(*) AS duplicate_count
FROM resent_copies
GROUP BY device_id, TUMBLE(event_time, INTERVAL '1' MINUTE);
