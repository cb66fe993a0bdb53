-- Progress of the Parquet archive (kappa/archive.py): the next Kafka offset to archive per partition.
-- Committed after the batch's objects are written, so a restart rewrites, never skips.
CREATE TABLE IF NOT EXISTS archive_offsets (
  topic           TEXT        NOT NULL,
  kafka_partition INTEGER     NOT NULL,
  next_offset     BIGINT      NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, kafka_partition)
);
