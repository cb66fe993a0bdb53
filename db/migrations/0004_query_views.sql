-- Query views: the stable reading interface, identical on TimescaleDB and plain PostgreSQL
-- (they read the tables and rollups of 0003, whichever flavour made them). Columns are listed
-- explicitly; tests/timescale/expected_views.json holds the column lists both backends must give.

CREATE VIEW v_device_1m AS
SELECT
  device_id, site_id, device_type, window_start, window_end, reading_count,
  temp_min, temp_max, temp_avg, temp_first, temp_last, temp_stddev,
  humidity_min, humidity_max, humidity_avg, humidity_first, humidity_last, humidity_stddev,
  vibration_min, vibration_max, vibration_avg, vibration_first, vibration_last, vibration_stddev,
  battery_min, battery_max, battery_avg, battery_first, battery_last, battery_stddev,
  first_event_time, last_event_time, updated_at
FROM device_agg_1m;

CREATE VIEW v_device_1h AS
SELECT
  device_id, site_id, device_type, window_start, window_start + INTERVAL '1 hour' AS window_end,
  window_count, reading_count,
  temp_min, temp_max, temp_avg, temp_stddev,
  humidity_min, humidity_max, humidity_avg, humidity_stddev,
  vibration_min, vibration_max, vibration_avg, vibration_stddev,
  battery_min, battery_max, battery_avg, battery_stddev,
  first_event_time, last_event_time
FROM device_agg_1h;

CREATE VIEW v_device_1d AS
SELECT
  device_id, site_id, device_type, window_start, window_start + INTERVAL '1 day' AS window_end,
  window_count, reading_count,
  temp_min, temp_max, temp_avg, temp_stddev,
  humidity_min, humidity_max, humidity_avg, humidity_stddev,
  vibration_min, vibration_max, vibration_avg, vibration_stddev,
  battery_min, battery_max, battery_avg, battery_stddev,
  first_event_time, last_event_time
FROM device_agg_1d;

CREATE VIEW v_site_5m AS
SELECT
  site_id, window_start, window_end, device_count, reading_count,
  temp_avg, temp_min, temp_max, humidity_avg, vibration_max, battery_min, updated_at
FROM site_agg_5m;

-- Alerts with trigger_values as jsonb.
CREATE VIEW v_alerts AS
SELECT
  alert_id, device_id, site_id, alert_type, severity, first_event_time, last_event_time,
  trigger_values_json AS trigger_values, rule_version, detected_at, updated_at
FROM alerts;
