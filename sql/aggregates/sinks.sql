-- reads: -
-- defines: device_agg_1m_sink, site_agg_5m_sink, duplicates_1m_sink, late_readings_sink, dead_letters_sink
-- defines: dead_letters_topic, aggregates_topic, late_readings_topic
-- Sinks of the aggregation job. PostgreSQL tables are written with JDBC upserts keyed by
-- (entity, window start), so a restart, a replay or a window updated by a reading within allowed
-- lateness rewrites the same row; Kafka topics use Flink's transactional (exactly-once) sink, visible
-- to read_committed consumers at each checkpoint.

-- device_model is the last column of the PostgreSQL table (migration 0012 added it); the JDBC sink
-- writes by column name, so it may sit next to site and type here.
CREATE TABLE device_agg_1m_sink (
  device_id STRING, site_id STRING, device_type STRING, device_model STRING,
  window_start TIMESTAMP(3), window_end TIMESTAMP(3), reading_count BIGINT,
  temp_min DOUBLE, temp_max DOUBLE, temp_avg DOUBLE, temp_first DOUBLE, temp_last DOUBLE, temp_stddev DOUBLE,
  humidity_min DOUBLE, humidity_max DOUBLE, humidity_avg DOUBLE, humidity_first DOUBLE, humidity_last DOUBLE,
  humidity_stddev DOUBLE,
  vibration_min DOUBLE, vibration_max DOUBLE, vibration_avg DOUBLE, vibration_first DOUBLE, vibration_last DOUBLE,
  vibration_stddev DOUBLE,
  battery_min DOUBLE, battery_max DOUBLE, battery_avg DOUBLE, battery_first DOUBLE, battery_last DOUBLE,
  battery_stddev DOUBLE,
  first_event_time TIMESTAMP(3), last_event_time TIMESTAMP(3),
  PRIMARY KEY (device_id, window_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'device_agg_1m${output_suffix}',
  'sink.buffer-flush.interval' = '1 s', 'sink.buffer-flush.max-rows' = '1000', 'sink.max-retries' = '5'
);

CREATE TABLE site_agg_5m_sink (
  site_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
  device_count BIGINT, reading_count BIGINT,
  temp_avg DOUBLE, temp_min DOUBLE, temp_max DOUBLE, humidity_avg DOUBLE, vibration_max DOUBLE, battery_min DOUBLE,
  PRIMARY KEY (site_id, window_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'site_agg_5m${output_suffix}',
  'sink.buffer-flush.interval' = '1 s', 'sink.buffer-flush.max-rows' = '1000', 'sink.max-retries' = '5'
);

CREATE TABLE duplicates_1m_sink (
  device_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), duplicate_count BIGINT,
  PRIMARY KEY (device_id, window_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'duplicates_1m${output_suffix}', 'sink.buffer-flush.interval' = '1 s'
);

CREATE TABLE late_readings_sink (
  device_id STRING, seq BIGINT, event_time TIMESTAMP(3), kafka_partition INT, kafka_offset BIGINT,
  PRIMARY KEY (device_id, seq, kafka_partition, kafka_offset) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'late_readings${output_suffix}', 'sink.buffer-flush.interval' = '1 s'
);

CREATE TABLE dead_letters_sink (
  topic STRING, kafka_partition INT, kafka_offset BIGINT, reason STRING, error STRING,
  kafka_timestamp TIMESTAMP(3), payload BYTES,
  PRIMARY KEY (topic, kafka_partition, kafka_offset) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'dead_letters${output_suffix}', 'sink.buffer-flush.interval' = '1 s'
);

-- Field order and types follow schemas/avro/dead_letters/v1.avsc (Flink writes Avro by position).
-- The registry is HTTPS only: the format verifies its certificate, host name included, against the CA file
-- ${registry_ca_file} (PEM, read by the Confluent client itself: no truststore file, no password).
CREATE TABLE dead_letters_topic (
  topic STRING NOT NULL, `partition` INT NOT NULL, `offset` BIGINT NOT NULL, kafka_timestamp TIMESTAMP(3),
  reason STRING NOT NULL, error STRING NOT NULL, `key` BYTES, payload BYTES, received_at TIMESTAMP(3) NOT NULL
) WITH (
  'connector' = 'kafka',
  'topic' = '${dead_letter_topic}${output_suffix}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.transaction.timeout.ms' = '900000',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${group_prefix}-${job_name}${output_suffix}-dlq',
  'format' = 'avro-confluent',
  'avro-confluent.url' = '${registry_url}',
  'avro-confluent.ssl.truststore.location' = '${registry_ca_file}',
  'avro-confluent.properties.schema.registry.ssl.truststore.type' = 'PEM',
  'avro-confluent.properties.schema.registry.ssl.endpoint.identification.algorithm' = 'https',
  'avro-confluent.basic-auth.credentials-source' = 'USER_INFO',
  'avro-confluent.basic-auth.user-info' = '${registry_user_info}',
  'avro-confluent.subject' = '${dead_letter_topic}${output_suffix}-value',
  'avro-confluent.schema' = '${dead_letters_avro_schema}'
);

-- Field order and types follow schemas/avro/aggregates/v2.avsc (v1 + device_model, last). An upsert
-- topic: a window is written when it fires and again each time a reading within allowed lateness
-- updates it, under the same key
-- {"device_id": ..., "window_start": ...} (JSON), so a consumer keeps the last record per key (compaction
-- does the same). Records of one key stay in one partition, in order. Exactly-once as the other topics;
-- the writer keeps only the last version of a key it buffers between flushes.
CREATE TABLE aggregates_topic (
  device_id STRING NOT NULL, site_id STRING NOT NULL, device_type STRING NOT NULL,
  window_start TIMESTAMP(3) NOT NULL, window_end TIMESTAMP(3) NOT NULL, reading_count BIGINT NOT NULL,
  temperature_c_min DOUBLE, temperature_c_max DOUBLE, temperature_c_avg DOUBLE, temperature_c_stddev DOUBLE,
  temperature_c_first DOUBLE, temperature_c_last DOUBLE,
  humidity_pct_min DOUBLE, humidity_pct_max DOUBLE, humidity_pct_avg DOUBLE, humidity_pct_stddev DOUBLE,
  vibration_mm_s_min DOUBLE, vibration_mm_s_max DOUBLE, vibration_mm_s_avg DOUBLE, vibration_mm_s_stddev DOUBLE,
  battery_pct_min DOUBLE, battery_pct_max DOUBLE, battery_pct_avg DOUBLE, battery_pct_last DOUBLE,
  device_model STRING,
  PRIMARY KEY (device_id, window_start) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${aggregates_topic}${output_suffix}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.transaction.timeout.ms' = '900000',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${group_prefix}-${job_name}${output_suffix}-agg',
  'sink.buffer-flush.max-rows' = '1000',
  'sink.buffer-flush.interval' = '1 s',
  'key.format' = 'json',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${registry_url}',
  'value.avro-confluent.ssl.truststore.location' = '${registry_ca_file}',
  'value.avro-confluent.properties.schema.registry.ssl.truststore.type' = 'PEM',
  'value.avro-confluent.properties.schema.registry.ssl.endpoint.identification.algorithm' = 'https',
  'value.avro-confluent.basic-auth.credentials-source' = 'USER_INFO',
  'value.avro-confluent.basic-auth.user-info' = '${registry_user_info}',
  'value.avro-confluent.subject' = '${aggregates_topic}${output_suffix}-value',
  'value.avro-confluent.schema' = '${aggregates_avro_schema}',
  'value.fields-include' = 'ALL'
);

-- Late readings also go to a topic through the exactly-once sink: it holds exactly the readings
-- the committed run routed late. The late_readings table (JDBC, at-least-once) can keep a row
-- written by an attempt that later failed: after recovery the watermark restarts behind, so the
-- replayed reading may be on time and be aggregated instead. Account from the topic.
CREATE TABLE late_readings_topic (
  device_id STRING, seq BIGINT, event_time TIMESTAMP(3), kafka_partition INT, kafka_offset BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${telemetry_topic}-late${output_suffix}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.transaction.timeout.ms' = '900000',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${group_prefix}-${job_name}${output_suffix}-late',
  'format' = 'json'
);
