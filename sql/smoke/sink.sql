-- reads: -
-- defines: smoke_counts_sink
-- Sink of the smoke pipeline: upserts into PostgreSQL keyed by (device, window start),
-- so a restart or a replay rewrites the same rows instead of adding new ones.
CREATE TABLE smoke_counts_sink (
  device_id STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  readings BIGINT,
  avg_temperature DOUBLE,
  PRIMARY KEY (device_id, window_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${jdbc_url}',
  'table-name' = 'smoke_counts${output_suffix}',
  'username' = '${pg_user}',
  'password' = '${pg_password}',
  'sink.buffer-flush.interval' = '1 s'
);
