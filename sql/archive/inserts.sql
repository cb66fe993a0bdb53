-- reads: telemetry_valid, device_windows_1m, telemetry_dead_letters
-- defines: -
-- writes: ${lake_catalog}.${lake_namespace}.telemetry${lake_suffix}
-- writes: ${lake_catalog}.${lake_namespace}.device_agg_1m${lake_suffix}
-- writes: ${lake_catalog}.${lake_namespace}.dead_letters${lake_suffix}
-- The aggregation job's archive: Iceberg tables committed at each checkpoint (exactly once: Iceberg's
-- FlinkSink commits the files of a checkpoint once it completes, and a restore re-commits only a
-- checkpoint's files not yet committed). The default FlinkSink, not the v2 IcebergSink, which can stop
-- committing after a stateless restart with repeated job/operator ids (apache/iceberg#18098).
-- `${lake_suffix}` is the output suffix, or '' when a replay writes a branch of the live tables: then
-- `${lake_write_options}` is the table hint naming it (kappa.flinkenv.lake_write_hint).

-- Every decoded reading, duplicates and late ones included, once per Kafka record; columns in
-- kappa.lake.TELEMETRY order (uptime_s, telemetry v3, last: tables made before it have it added at the end).
INSERT INTO `${lake_catalog}`.`${lake_namespace}`.`telemetry${lake_suffix}`${lake_write_options}
SELECT device_id, site_id, device_type, seq, CAST(event_time AS TIMESTAMP(6)), status, firmware_version,
       temperature_c, humidity_pct, pressure_hpa, vibration_mm_s, power_w, battery_pct, signal_rssi_dbm,
       schema_id, kafka_partition, kafka_offset, uptime_s
FROM telemetry_valid;

-- The 1-minute windows, upserted by (device, type, window start) as the PostgreSQL table is; columns in
-- kappa.lake.DEVICE_AGG_1M order (device_model last: tables made before it have it added at the end).
INSERT INTO `${lake_catalog}`.`${lake_namespace}`.`device_agg_1m${lake_suffix}`${lake_write_options}
SELECT device_id, site_id, device_type, CAST(window_start AS TIMESTAMP(6)), CAST(window_end AS TIMESTAMP(6)),
       reading_count,
       temp_min, temp_max, temp_avg, temp_first, temp_last, temp_stddev,
       humidity_min, humidity_max, humidity_avg, humidity_first, humidity_last, humidity_stddev,
       vibration_min, vibration_max, vibration_avg, vibration_first, vibration_last, vibration_stddev,
       battery_min, battery_max, battery_avg, battery_first, battery_last, battery_stddev,
       CAST(first_event_time AS TIMESTAMP(6)), CAST(last_event_time AS TIMESTAMP(6)), device_model
FROM device_windows_1m;

-- Dead letters' metadata (their payloads stay in the dead-letter topic and table).
INSERT INTO `${lake_catalog}`.`${lake_namespace}`.`dead_letters${lake_suffix}`${lake_write_options}
SELECT kafka_topic, kafka_partition, kafka_offset, dlq_reason, dlq_error, CAST(kafka_ts AS TIMESTAMP(6))
FROM telemetry_dead_letters;
