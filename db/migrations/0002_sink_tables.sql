-- Tables of the alerting job and the pipeline's accounting: the same on TimescaleDB and on plain
-- PostgreSQL (the time-series tables come in 0003, the query views in 0004).
--
-- Conventions of every kappa table written by Flink:
--   * Event times are TIMESTAMP (without time zone) holding UTC wall time. Flink's JDBC sink writes
--     TIMESTAMP(3) values with no zone; a TIMESTAMPTZ column would reinterpret them in the
--     session's TimeZone. Compare them with `now() AT TIME ZONE 'UTC'`, never with `now()::timestamp`.
--   * Sinks upsert (INSERT ... ON CONFLICT (primary key) DO UPDATE), so each table has a primary
--     key equal to the PRIMARY KEY ... NOT ENFORCED declared in the Flink DDL.
--   * updated_at is maintained here (DEFAULT now() plus a BEFORE UPDATE trigger), never by Flink.
--   * Identifiers are never SQL keywords: Flink's PostgreSQL dialect does not quote column names.

CREATE OR REPLACE FUNCTION kappa_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

-- Alerts of the CEP / rule job (schemas/avro/alerts/v1.avsc), upserted by their deterministic id.
-- trigger_values is the Avro map<string,double> written by Flink as a JSON STRING (the JDBC sink
-- cannot bind a STRING to jsonb); the stored generated column parses it once, on insert, so a
-- malformed value fails the write instead of every later read. Read alerts through v_alerts.
CREATE TABLE alerts (
  alert_id            TEXT        NOT NULL PRIMARY KEY,
  device_id           TEXT        NOT NULL,
  site_id             TEXT        NOT NULL,
  alert_type          TEXT        NOT NULL,  -- OVERHEATING, TEMPERATURE_TREND, VIBRATION_THEN_HEAT, LOW_BATTERY, DEVICE_SILENT
  severity            TEXT        NOT NULL,  -- INFO, WARNING, CRITICAL
  first_event_time    TIMESTAMP   NOT NULL,
  last_event_time     TIMESTAMP   NOT NULL,
  trigger_values      TEXT,                  -- JSON object text, e.g. {"max_temperature_c": 91.2}
  rule_version        TEXT        NOT NULL,
  detected_at         TIMESTAMP   NOT NULL,  -- event time the pattern completed (UTC)
  trigger_values_json JSONB GENERATED ALWAYS AS (trigger_values::jsonb) STORED,
  updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alerts_device_time_idx ON alerts (device_id, first_event_time);
CREATE INDEX alerts_detected_idx ON alerts (detected_at);
CREATE INDEX alerts_type_detected_idx ON alerts (alert_type, detected_at);
CREATE TRIGGER alerts_touch BEFORE UPDATE ON alerts
  FOR EACH ROW EXECUTE FUNCTION kappa_touch_updated_at();

-- Rule thresholds per device type, with optional per-device overrides (device_id set). A reader
-- takes the row of the device if there is one, else the row of its type (device_id NULL).
-- Times are in seconds, temperatures in degrees C, vibration in mm/s, battery in percent.
CREATE TABLE alert_thresholds (
  threshold_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_type            TEXT             NOT NULL,
  device_id              TEXT,                       -- NULL: the default of the device type
  overheat_temp_c        DOUBLE PRECISION NOT NULL,  -- OVERHEATING: N consecutive readings above this
  overheat_count         INTEGER          NOT NULL,  --   ... N
  rising_delta_c         DOUBLE PRECISION NOT NULL,  -- TEMPERATURE_TREND: total rise of at least this
  rising_readings        INTEGER          NOT NULL,  --   ... over this many strictly rising readings
  vibration_spike_mm_s   DOUBLE PRECISION NOT NULL,  -- VIBRATION_THEN_HEAT: vibration above this
  temp_spike_c           DOUBLE PRECISION NOT NULL,  --   ... followed by a temperature above this
  spike_window_s         INTEGER          NOT NULL,  --   ... within this many seconds
  low_battery_pct        DOUBLE PRECISION NOT NULL,  -- LOW_BATTERY: battery below this
  low_battery_duration_s INTEGER          NOT NULL,  --   ... for at least this long
  silent_after_s         INTEGER          NOT NULL,  -- DEVICE_SILENT: no reading for longer than this
  cooldown_s             INTEGER          NOT NULL,  -- no repeat alert of a type for a device within this
  rule_version           TEXT             NOT NULL DEFAULT 'rules-v1',
  updated_at             TIMESTAMPTZ      NOT NULL DEFAULT now(),
  CHECK (overheat_count > 0 AND rising_readings > 1 AND spike_window_s > 0
         AND low_battery_duration_s >= 0 AND silent_after_s > 0 AND cooldown_s >= 0)
);
CREATE UNIQUE INDEX alert_thresholds_scope_key ON alert_thresholds (device_type, COALESCE(device_id, ''));
CREATE TRIGGER alert_thresholds_touch BEFORE UPDATE ON alert_thresholds
  FOR EACH ROW EXECUTE FUNCTION kappa_touch_updated_at();

-- Defaults, matching the anomalies the simulator plants (kappa/simulate.py: OVERHEAT_C,
-- VIBRATION_SPIKE_MM_S = 20, LOW_BATTERY_PCT = 15, TREND_MIN_RISE_C = 9 over 12 readings,
-- SILENCE_S = 180, VIB_HEAT_WITHIN_S = 60).
INSERT INTO alert_thresholds (device_type, overheat_temp_c, overheat_count, rising_delta_c, rising_readings,
                              vibration_spike_mm_s, temp_spike_c, spike_window_s, low_battery_pct,
                              low_battery_duration_s, silent_after_s, cooldown_s)
VALUES ('thermal',       85.0, 3, 9.0, 12, 20.0, 85.0, 60, 15.0, 60, 180, 300),
       ('vibration',     80.0, 3, 9.0, 12, 20.0, 80.0, 60, 15.0, 60, 180, 300),
       ('environmental', 50.0, 3, 9.0, 12, 20.0, 50.0, 60, 15.0, 60, 180, 300),
       ('power',         90.0, 3, 9.0, 12, 20.0, 90.0, 60, 15.0, 60, 180, 300);

-- Late readings (behind the watermark, dropped from the aggregates), counted per device and the
-- one-minute window they would have belonged to.
CREATE TABLE late_readings_1m (
  device_id     TEXT        NOT NULL,
  window_start  TIMESTAMP   NOT NULL,
  window_end    TIMESTAMP,
  reading_count BIGINT      NOT NULL,
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, window_start)
);
CREATE TRIGGER late_readings_1m_touch BEFORE UPDATE ON late_readings_1m
  FOR EACH ROW EXECUTE FUNCTION kappa_touch_updated_at();

-- Records that failed decoding or validation, one per Kafka record (kafka_partition and
-- kafka_offset because PARTITION and OFFSET are SQL keywords).
CREATE TABLE dead_letters (
  topic           TEXT        NOT NULL,
  kafka_partition INTEGER     NOT NULL,
  kafka_offset    BIGINT      NOT NULL,
  reason          TEXT        NOT NULL,  -- BAD_MAGIC, TOO_SHORT, UNKNOWN_SCHEMA_ID, CORRUPT_BODY, INVALID_VALUE, ...
  error           TEXT,
  kafka_timestamp TIMESTAMP,
  payload         BYTEA,
  received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason);
