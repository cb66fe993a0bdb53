-- Valid readings with their device's metadata AS OF THE READING'S EVENT TIME (event-time temporal join
-- on device_metadata_versions, declared in device_versions.sql): a device moved to another site at T
-- has its readings before T under the old site and from T under the new one, in a live run and in any
-- replay. Readings of a device without any version keep NULL metadata (registry_site_id etc.): the
-- reading's own site_id is left as the device sent it. For the aggregates to group by site/model as of
-- the reading (wiring left to the aggregate job's owner).
CREATE TEMPORARY VIEW telemetry_with_metadata AS
SELECT
  r.*,
  m.site_id AS registry_site_id,
  m.`model` AS registry_model,
  m.location AS registry_location,
  m.status AS registry_status
FROM telemetry_valid AS r
LEFT JOIN device_metadata_versions FOR SYSTEM_TIME AS OF r.event_time AS m
  ON m.device_key = r.device_id;
