-- Kappa reprocessing (`kappa replay`): one row per replayed version of a job's outputs. A version
-- reads exactly [start_offsets, end_offsets) of its input topic (per partition, captured when the
-- replay started) and writes tables/topics suffixed with `_<version>`. At most one version per job
-- is promoted (the reader views select from its tables); none promoted means the live tables.
CREATE TABLE IF NOT EXISTS replay_versions (
  job           TEXT        NOT NULL,
  version       TEXT        NOT NULL,
  topic         TEXT        NOT NULL,
  start_offsets JSONB       NOT NULL,  -- {"0": 0, "1": 0, ...}: first offset read per partition
  end_offsets   JSONB       NOT NULL,  -- {"0": 120, ...}: first offset NOT read per partition
  from_spec     TEXT        NOT NULL,  -- 'earliest' or the ISO timestamp asked for
  to_spec       TEXT,                  -- NULL: the end offsets at start; else the ISO timestamp
  state         TEXT        NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'finished', 'failed', 'promoted')),
  error         TEXT,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at   TIMESTAMPTZ,
  PRIMARY KEY (job, version)
);

CREATE UNIQUE INDEX IF NOT EXISTS replay_versions_one_promoted ON replay_versions (job) WHERE state = 'promoted';
