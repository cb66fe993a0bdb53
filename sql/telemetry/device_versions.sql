-- reads: -
-- defines: device_metadata_versions
-- Device metadata as a versioned table on the devices topic (kappa/devices/versions.py: registering,
-- moving or decommissioning a device writes a version, valid from its valid_from in event time; a
-- device's first version is valid from the epoch). Same reading rules as the alert thresholds (see
-- sql/alerts/threshold_versions.sql): every version kept, the watermark released only by the
-- source's end (bounded runs) or its idleness (live jobs).
CREATE TABLE device_metadata_versions (
  device_key STRING NOT NULL,  -- = device_id (the record key)
  device_id STRING,
  site_id STRING,
  device_type STRING,
  `model` STRING,
  firmware STRING,
  location STRING,
  status STRING,
  valid_from_ms BIGINT,
  valid_from AS TO_TIMESTAMP_LTZ(valid_from_ms, 3),
  WATERMARK FOR valid_from AS TO_TIMESTAMP_LTZ(0, 3),
  PRIMARY KEY (device_key) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${devices_topic}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.group.id' = '${group_prefix}-${job_name}${output_suffix}-devices',
  'key.format' = 'raw',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'scan.watermark.idle-timeout' = '${reference_idle_timeout_s} s'${reference_options}
);
