-- reads: readings, device_metadata_versions
-- defines: readings_with_metadata
-- Aggregated readings with their device's metadata AS OF THE READING'S EVENT TIME (event-time temporal
-- join on device_metadata_versions, declared in device_versions.sql): a device moved to another site at
-- T has its readings before T under the old site and from T under the new one, in a live run and in any
-- replay, so a move changes only the windows after it.
--
-- The default, explicitly: a reading with no version in force at its event time (a device never
-- registered, or a reading older than its first version) keeps the site and type it sent itself
-- (metadata_source = 'payload'); otherwise the registry's version wins (metadata_source = 'registry').
--
-- Joined after the late split and the de-duplication (dedup.sql: `readings`), so only readings that
-- enter the windows are joined; late readings and duplicates are counted as before. The join is
-- append-only (a temporal join emits inserts only) and keeps the reading's event-time attribute, so
-- the windows downstream still fire on it and take allowed-lateness updates. It holds each reading
-- until its watermark (the minimum of the readings' and of the reference source's) passes the
-- reading's event time; the reference watermark is released by the source's end (bounded runs) or its
-- idleness (live jobs, job.reference_idle_timeout_s), see device_versions.sql.
CREATE TEMPORARY VIEW readings_with_metadata AS
SELECT
  r.device_id,
  COALESCE(m.site_id, r.site_id) AS site_id,
  COALESCE(m.device_type, r.device_type) AS device_type,
  m.`model` AS device_model,
  CASE WHEN m.device_key IS NULL THEN 'payload' ELSE 'registry' END AS metadata_source,
  r.seq, r.event_time, r.event_ms, r.status, r.firmware_version,
  r.temperature_c, r.humidity_pct, r.pressure_hpa, r.vibration_mm_s, r.power_w, r.battery_pct, r.signal_rssi_dbm
FROM readings AS r
LEFT JOIN device_metadata_versions FOR SYSTEM_TIME AS OF r.event_time AS m
  ON m.device_key = r.device_id;
