-- reads: -
-- defines: ${lake_catalog}
-- The archive's Iceberg catalog (kappa.lake): Iceberg's JDBC catalog in the project's PostgreSQL (its own
-- role and schema, TLS verified: kappa/pg_security.py),
-- data and metadata files on the stack's S3 (path-style, as SeaweedFS serves them). The tables exist
-- before the job plans (kappa.lake.ensure_tables: hidden partitions need Iceberg's API, not Flink DDL).
-- The SQL lint's Flink dialect cannot parse CREATE CATALOG with a quoted name: parse errors off from here
-- noqa: disable=PRS
CREATE CATALOG `${lake_catalog}` WITH (
  'type' = 'iceberg',
  'catalog-impl' = 'org.apache.iceberg.jdbc.JdbcCatalog',
  'uri' = '${jdbc_url}',
  'jdbc.user' = '${lake_pg_user}',
  'jdbc.password' = '${lake_pg_password}',
  'warehouse' = '${lake_warehouse}',
  'io-impl' = 'org.apache.iceberg.aws.s3.S3FileIO',
  's3.endpoint' = '${s3_endpoint}',
  's3.path-style-access' = 'true',
  's3.access-key-id' = '${s3_access_key}',
  's3.secret-access-key' = '${s3_secret_key}',
  'client.region' = '${s3_region}'
);
