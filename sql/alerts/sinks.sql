-- reads: -
-- defines: alerts_sink, alerts_topic
-- Sinks of the alerting job: PostgreSQL upserts by alert_id, and the alerts topic through Flink's
-- transactional (exactly-once) Kafka sink, Avro in the Confluent wire format (schemas/avro/alerts/v1.avsc).
CREATE TABLE alerts_sink (
  alert_id STRING, device_id STRING, site_id STRING, alert_type STRING, severity STRING,
  first_event_time TIMESTAMP(3), last_event_time TIMESTAMP(3), trigger_values STRING,
  rule_version STRING, detected_at TIMESTAMP(3),
  PRIMARY KEY (alert_id) NOT ENFORCED
) WITH (
  'connector' = 'jdbc', 'url' = '${jdbc_url}', 'username' = '${pg_user}', 'password' = '${pg_password}',
  'table-name' = 'alerts${output_suffix}',
  'sink.buffer-flush.interval' = '1 s', 'sink.buffer-flush.max-rows' = '1000', 'sink.max-retries' = '5'
);

-- Field order and types follow schemas/avro/alerts/v1.avsc (Flink writes Avro by position).
-- The registry is HTTPS only: the format verifies its certificate, host name included, against the CA file
-- ${registry_ca_file} (PEM, read by the Confluent client itself: no truststore file, no password).
-- The SQL lint's Flink dialect cannot parse MAP<STRING NOT NULL, DOUBLE NOT NULL>: parse errors off from here
-- noqa: disable=PRS
CREATE TABLE alerts_topic (
  alert_id STRING NOT NULL, device_id STRING NOT NULL, site_id STRING NOT NULL,
  alert_type STRING NOT NULL, severity STRING NOT NULL,
  first_event_time TIMESTAMP(3) NOT NULL, last_event_time TIMESTAMP(3) NOT NULL,
  trigger_values MAP<STRING NOT NULL, DOUBLE NOT NULL> NOT NULL,
  rule_version STRING NOT NULL, detected_at TIMESTAMP(3) NOT NULL
) WITH (
  'connector' = 'kafka',
  'topic' = '${alerts_topic}${output_suffix}',
  'properties.bootstrap.servers' = '${kafka_bootstrap}', ${kafka_security}
  'properties.transaction.timeout.ms' = '900000',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${group_prefix}-${job_name}${output_suffix}-alerts',
  'key.format' = 'raw',
  'key.fields' = 'alert_id',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${registry_url}',
  'value.avro-confluent.ssl.truststore.location' = '${registry_ca_file}',
  'value.avro-confluent.properties.schema.registry.ssl.truststore.type' = 'PEM',
  'value.avro-confluent.properties.schema.registry.ssl.endpoint.identification.algorithm' = 'https',
  'value.avro-confluent.basic-auth.credentials-source' = 'USER_INFO',
  'value.avro-confluent.basic-auth.user-info' = '${registry_user_info}',
  'value.avro-confluent.subject' = '${alerts_topic}${output_suffix}-value',
  'value.avro-confluent.schema' = '${alerts_avro_schema}',
  'value.fields-include' = 'ALL'
);
