-- Manifest of the Parquet archive (kappa/archive.py, kappa/archive_compact.py): every object readers
-- may read. S3 has no atomic multi-object swap, so this table is the archive's truth: an object is
-- visible once registered 'live' here; the writer registers a batch's objects in the same transaction
-- that moves archive_offsets, and compaction registers its merged object and marks the inputs
-- 'replaced' in one transaction, then deletes them from S3 and from here.
CREATE TABLE IF NOT EXISTS archive_files (
  object_key      TEXT        PRIMARY KEY,        -- key in the bucket: <prefix>/<hive partition>/<name>.parquet
  prefix          TEXT        NOT NULL,           -- one archive (dataset) per prefix
  hive_partition  TEXT        NOT NULL,           -- e.g. event_date=2026-01-01/hour=03/device_type=thermo
  topic           TEXT        NOT NULL,           -- the Kafka topic the rows come from
  kafka_partition INTEGER,                        -- writer objects: the source partition ...
  first_offset    BIGINT,                         -- ... and its offset range [first_offset, next_offset)
  next_offset     BIGINT,
  inputs          TEXT[],                         -- compacted objects: the object keys merged into it
  row_count       BIGINT      NOT NULL,
  byte_count      BIGINT      NOT NULL,
  min_event_time  TIMESTAMP,                      -- UTC
  max_event_time  TIMESTAMP,                      -- UTC
  state           TEXT        NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'replaced')),
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  replaced_at     TIMESTAMPTZ,
  CHECK ((kafka_partition IS NOT NULL AND first_offset IS NOT NULL AND next_offset IS NOT NULL) <> (inputs IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS archive_files_by_partition ON archive_files (prefix, state, hive_partition);
