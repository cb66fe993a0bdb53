-- reads: telemetry_accepted
-- defines: telemetry_copies, readings, resent_copies
-- Re-sent readings (same device and sequence number): the first copy read is the reading, every later
-- copy is a duplicate. A running count per (device, seq) in arrival order numbers the copies; copies of
-- a reading share its key, so they are in one Kafka partition and their order is offset order. Both
-- outputs are append-only, so windows with allowed lateness can follow them, and each accepted record
-- is in exactly one of the two (the accounting stays exact by construction).
--
-- The count's state lives `table.exec.state.ttl` (kappa.lateness: allowed_lateness + the largest
-- window + the watermark delay, in processing time): a copy re-sent after that is counted again.
CREATE TEMPORARY VIEW telemetry_copies AS
SELECT *,
  COUNT(*) OVER (PARTITION BY device_id, seq ORDER BY proc_time
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS copy_number
FROM telemetry_accepted;

CREATE TEMPORARY VIEW readings AS
SELECT device_id, site_id, device_type, seq, event_time, event_ms, status, firmware_version,
       temperature_c, humidity_pct, pressure_hpa, vibration_mm_s, power_w, battery_pct, signal_rssi_dbm
FROM telemetry_copies
WHERE copy_number = 1;

CREATE TEMPORARY VIEW resent_copies AS
SELECT device_id, seq, event_time
FROM telemetry_copies
WHERE copy_number > 1;
