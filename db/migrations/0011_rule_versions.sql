-- Alert thresholds are versions in Kafka now (topic kafka.rules_topic, written by `kappa rules set`;
-- the alerting job joins them as of each reading's event time). PostgreSQL keeps a readable copy,
-- rewritten from the topic by every `kappa rules` command:
--   alert_threshold_versions: every version, with the event time it is valid from;
--   alert_thresholds (0002): per rule key, the version in force when the copy was last refreshed,
--     an override's columns completed from its type's default (valid_from says since when).
-- The default rows 0002 seeds become the first version of each type, valid from the epoch: a reading
-- older than any change gets them, explicitly (seeded into the topic by `kappa db migrate`).
CREATE TABLE IF NOT EXISTS alert_threshold_versions (
  rule_key               TEXT             NOT NULL,  -- device_type, or device_type/device_id
  device_type            TEXT             NOT NULL,
  device_id              TEXT,                       -- NULL: the default of the device type
  valid_from             TIMESTAMPTZ      NOT NULL,  -- event time the version applies from
  overheat_temp_c        DOUBLE PRECISION,           -- NULL in an override: the default's value
  overheat_count         INTEGER,
  rising_delta_c         DOUBLE PRECISION,
  rising_readings        INTEGER,
  vibration_spike_mm_s   DOUBLE PRECISION,
  temp_spike_c           DOUBLE PRECISION,
  spike_window_s         INTEGER,
  low_battery_pct        DOUBLE PRECISION,
  low_battery_duration_s INTEGER,
  silent_after_s         INTEGER,
  cooldown_s             INTEGER,
  rule_version           TEXT             NOT NULL,
  written_at             TIMESTAMPTZ,
  kafka_offset           BIGINT           NOT NULL,  -- in the rules topic: of two versions with the same
  PRIMARY KEY (rule_key, valid_from, kafka_offset)   -- valid_from, the later offset is the one in force
);

ALTER TABLE alert_thresholds ADD COLUMN IF NOT EXISTS valid_from TIMESTAMPTZ NOT NULL DEFAULT 'epoch';
