-- Re-sent readings (same device and sequence number) are dropped inside each window: a re-sent
-- copy has the reading's own event time, so it always falls into the same window as the original.
-- Window de-duplication keeps the first copy by event time; its output is append-only, so the
-- aggregates after it need no retraction, and its state ends with the window.
CREATE TEMPORARY VIEW readings_1m AS
SELECT device_id, site_id, device_type, seq, event_time, event_ms, status, firmware_version,
       temperature_c, humidity_pct, pressure_hpa, vibration_mm_s, power_w, battery_pct, signal_rssi_dbm,
       window_start, window_end
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY window_start, window_end, device_id, seq ORDER BY event_time ASC) AS copy_number
  FROM TABLE(TUMBLE(TABLE telemetry_ontime, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
)
WHERE copy_number = 1;

CREATE TEMPORARY VIEW readings_5m AS
SELECT device_id, site_id, seq, event_time, temperature_c, humidity_pct, vibration_mm_s, battery_pct,
       window_start, window_end
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY window_start, window_end, device_id, seq ORDER BY event_time ASC) AS copy_number
  FROM TABLE(TUMBLE(TABLE telemetry_ontime, DESCRIPTOR(event_time), INTERVAL '5' MINUTE))
)
WHERE copy_number = 1;
