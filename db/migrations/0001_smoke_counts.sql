-- Output table of the smoke pipeline (jobs/smoke.py): one row per device and one-minute window.
CREATE TABLE IF NOT EXISTS smoke_counts (
  device_id       TEXT        NOT NULL,
  window_start    TIMESTAMP   NOT NULL,
  window_end      TIMESTAMP   NOT NULL,
  readings        BIGINT      NOT NULL,
  avg_temperature DOUBLE PRECISION,
  PRIMARY KEY (device_id, window_start)
);
