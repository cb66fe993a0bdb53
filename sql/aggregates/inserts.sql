-- reads: device_windows_1m, site_windows_5m, duplicate_counts_1m, telemetry_late, telemetry_dead_letters
-- defines: -
-- writes: device_agg_1m_sink, aggregates_topic, site_agg_5m_sink, duplicates_1m_sink, late_readings_sink
-- writes: dead_letters_sink, dead_letters_topic, late_readings_topic
-- What the aggregation job writes; all INSERTs run as one Flink job (one statement set).
INSERT INTO device_agg_1m_sink
SELECT device_id, site_id, device_type, device_model, window_start, window_end, reading_count,
       temp_min, temp_max, temp_avg, temp_first, temp_last, temp_stddev,
       humidity_min, humidity_max, humidity_avg, humidity_first, humidity_last, humidity_stddev,
       vibration_min, vibration_max, vibration_avg, vibration_first, vibration_last, vibration_stddev,
       battery_min, battery_max, battery_avg, battery_first, battery_last, battery_stddev,
       CAST(first_event_time AS TIMESTAMP(3)), CAST(last_event_time AS TIMESTAMP(3))
FROM device_windows_1m;

INSERT INTO aggregates_topic
SELECT device_id, site_id, device_type, window_start, window_end, reading_count,
       temp_min, temp_max, temp_avg, temp_stddev, temp_first, temp_last,
       humidity_min, humidity_max, humidity_avg, humidity_stddev,
       vibration_min, vibration_max, vibration_avg, vibration_stddev,
       battery_min, battery_max, battery_avg, battery_last, device_model
FROM device_windows_1m;

INSERT INTO site_agg_5m_sink
SELECT site_id, window_start, window_end, device_count, reading_count,
       temp_avg, temp_min, temp_max, humidity_avg, vibration_max, battery_min
FROM site_windows_5m;

INSERT INTO duplicates_1m_sink
SELECT device_id, window_start, window_end, duplicate_count FROM duplicate_counts_1m;

INSERT INTO late_readings_sink
SELECT device_id, seq, CAST(event_time AS TIMESTAMP(3)), kafka_partition, kafka_offset FROM telemetry_late;

INSERT INTO dead_letters_sink
SELECT kafka_topic, kafka_partition, kafka_offset, dlq_reason, dlq_error, CAST(kafka_ts AS TIMESTAMP(3)), payload
FROM telemetry_dead_letters;

INSERT INTO dead_letters_topic
SELECT kafka_topic, kafka_partition, kafka_offset, CAST(kafka_ts AS TIMESTAMP(3)), dlq_reason,
       COALESCE(dlq_error, ''), record_key, payload, LOCALTIMESTAMP
FROM telemetry_dead_letters;

INSERT INTO late_readings_topic
SELECT device_id, seq, CAST(event_time AS TIMESTAMP(3)), kafka_partition, kafka_offset FROM telemetry_late;
