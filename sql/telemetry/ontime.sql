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

-- Re-sent readings (same device and sequence number) are dropped: keep the first copy. The copies
-- are identical, so which one survives does not change any result; state is kept for
-- table.exec.state.ttl (set by the job), longer than any re-send window.
CREATE TEMPORARY VIEW telemetry_readings AS
SELECT device_id, site_id, device_type, seq, event_time, event_ms, status, firmware_version,
       temperature_c, humidity_pct, pressure_hpa, vibration_mm_s, power_w, battery_pct, signal_rssi_dbm
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY device_id, seq ORDER BY proc_time ASC) AS copy_number
  FROM telemetry_ontime
)
WHERE copy_number = 1;
