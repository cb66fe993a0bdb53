-- Time-series tables on TimescaleDB: hypertables, continuous aggregates and policies.
-- Twin of 0003_timeseries.postgres.sql; same tables, same rollup names and columns.
--
--   * device_agg_1m: hypertable on window_start, 1-day chunks; site_agg_5m: 7-day chunks. Their
--     primary keys include the time column, as a hypertable requires of every unique index.
--   * device_agg_1h / device_agg_1d: continuous aggregates over device_agg_1m (materialized only,
--     like the plain-PostgreSQL materialized views), created WITH NO DATA (WITH DATA cannot run in
--     the migration's transaction) and refreshed by their policies or `kappa db refresh`.
--   * Compression (columnstore) of device_agg_1m after 7 days, segmented by device_id; retention:
--     device_agg_1m and site_agg_5m 90 days, device_agg_1h 2 years, device_agg_1d kept. The
--     rollups keep buckets whose raw chunks were dropped (refresh windows end 3 days back).
--   * Uses the pre-2.18 names (timescaledb.compress, add_compression_policy, create_hypertable
--     with a column name) that TimescaleDB 2.23 still accepts, so older servers work too.
--
-- Column names of device_agg_1m: the Avro record (schemas/avro/aggregates/v1.avsc) spells the
-- measurements out (temperature_c_min, humidity_pct_avg, vibration_mm_s_max, battery_pct_last);
-- the table uses short prefixes, temp_ = temperature_c, humidity_ = humidity_pct,
-- vibration_ = vibration_mm_s, battery_ = battery_pct, each with the suffixes _min, _max, _avg,
-- _first, _last, _stddev (population standard deviation), NULL when the window has no value of
-- the measurement (and where the Avro record has no such statistic). Flink's INSERT INTO a JDBC
-- table is positional, so the job maps Avro names to these by column order.
--
-- Rollups device_agg_1h / device_agg_1d (one row per device and hour / day): window_count (the
-- number of one-minute windows), reading_count (sum), <m>_min (min of the minimums), <m>_max (max
-- of the maximums), <m>_avg (reading_count-weighted mean of the means), <m>_stddev (pooled
-- population standard deviation from the per-minute counts, means and deviations), first/last
-- event time. The weights are reading counts of windows where the measurement is present: exact
-- when a device sends the measurement in each of its readings, as the simulator's do.
-- site_id and device_type are max() over the bucket (a device does not change site or type).

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE device_agg_1m (
  device_id        TEXT        NOT NULL,
  site_id          TEXT        NOT NULL,
  device_type      TEXT        NOT NULL,
  window_start     TIMESTAMP   NOT NULL,  -- UTC wall time, inclusive
  window_end       TIMESTAMP   NOT NULL,  -- window_start + 1 minute, exclusive
  reading_count    BIGINT      NOT NULL,
  temp_min    DOUBLE PRECISION,
  temp_max    DOUBLE PRECISION,
  temp_avg    DOUBLE PRECISION,
  temp_first  DOUBLE PRECISION,
  temp_last   DOUBLE PRECISION,
  temp_stddev DOUBLE PRECISION,
  humidity_min    DOUBLE PRECISION,
  humidity_max    DOUBLE PRECISION,
  humidity_avg    DOUBLE PRECISION,
  humidity_first  DOUBLE PRECISION,
  humidity_last   DOUBLE PRECISION,
  humidity_stddev DOUBLE PRECISION,
  vibration_min    DOUBLE PRECISION,
  vibration_max    DOUBLE PRECISION,
  vibration_avg    DOUBLE PRECISION,
  vibration_first  DOUBLE PRECISION,
  vibration_last   DOUBLE PRECISION,
  vibration_stddev DOUBLE PRECISION,
  battery_min    DOUBLE PRECISION,
  battery_max    DOUBLE PRECISION,
  battery_avg    DOUBLE PRECISION,
  battery_first  DOUBLE PRECISION,
  battery_last   DOUBLE PRECISION,
  battery_stddev DOUBLE PRECISION,
  first_event_time TIMESTAMP,
  last_event_time  TIMESTAMP,
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, window_start)
);
SELECT create_hypertable('device_agg_1m', 'window_start', chunk_time_interval => INTERVAL '1 day');
CREATE TRIGGER device_agg_1m_touch BEFORE UPDATE ON device_agg_1m
  FOR EACH ROW EXECUTE FUNCTION kappa_touch_updated_at();

CREATE TABLE site_agg_5m (
  site_id       TEXT        NOT NULL,
  window_start  TIMESTAMP   NOT NULL,  -- UTC wall time, inclusive
  window_end    TIMESTAMP   NOT NULL,  -- window_start + 5 minutes, exclusive
  device_count  BIGINT      NOT NULL,  -- distinct devices with a reading in the window
  reading_count BIGINT      NOT NULL,
  temp_avg      DOUBLE PRECISION,
  temp_min      DOUBLE PRECISION,
  temp_max      DOUBLE PRECISION,
  humidity_avg  DOUBLE PRECISION,
  vibration_max DOUBLE PRECISION,
  battery_min   DOUBLE PRECISION,
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (site_id, window_start)
);
SELECT create_hypertable('site_agg_5m', 'window_start', chunk_time_interval => INTERVAL '7 days');
CREATE TRIGGER site_agg_5m_touch BEFORE UPDATE ON site_agg_5m
  FOR EACH ROW EXECUTE FUNCTION kappa_touch_updated_at();

CREATE MATERIALIZED VIEW device_agg_1h WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
  device_id,
  max(site_id) AS site_id,
  max(device_type) AS device_type,
  time_bucket(INTERVAL '1 hour', window_start) AS window_start,
  count(*) AS window_count,
  sum(reading_count)::bigint AS reading_count,
  min(temp_min) AS temp_min,
  max(temp_max) AS temp_max,
  sum(reading_count * temp_avg) / nullif(sum(reading_count) FILTER (WHERE temp_avg IS NOT NULL), 0)::double precision AS temp_avg,
  CASE WHEN count(temp_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (temp_stddev ^ 2 + temp_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE temp_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * temp_avg) / nullif(sum(reading_count) FILTER (WHERE temp_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS temp_stddev,
  min(humidity_min) AS humidity_min,
  max(humidity_max) AS humidity_max,
  sum(reading_count * humidity_avg) / nullif(sum(reading_count) FILTER (WHERE humidity_avg IS NOT NULL), 0)::double precision AS humidity_avg,
  CASE WHEN count(humidity_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (humidity_stddev ^ 2 + humidity_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE humidity_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * humidity_avg) / nullif(sum(reading_count) FILTER (WHERE humidity_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS humidity_stddev,
  min(vibration_min) AS vibration_min,
  max(vibration_max) AS vibration_max,
  sum(reading_count * vibration_avg) / nullif(sum(reading_count) FILTER (WHERE vibration_avg IS NOT NULL), 0)::double precision AS vibration_avg,
  CASE WHEN count(vibration_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (vibration_stddev ^ 2 + vibration_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE vibration_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * vibration_avg) / nullif(sum(reading_count) FILTER (WHERE vibration_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS vibration_stddev,
  min(battery_min) AS battery_min,
  max(battery_max) AS battery_max,
  sum(reading_count * battery_avg) / nullif(sum(reading_count) FILTER (WHERE battery_avg IS NOT NULL), 0)::double precision AS battery_avg,
  CASE WHEN count(battery_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (battery_stddev ^ 2 + battery_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE battery_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * battery_avg) / nullif(sum(reading_count) FILTER (WHERE battery_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS battery_stddev,
  min(first_event_time) AS first_event_time,
  max(last_event_time) AS last_event_time
FROM device_agg_1m
GROUP BY device_id, time_bucket(INTERVAL '1 hour', window_start)
WITH NO DATA;

CREATE MATERIALIZED VIEW device_agg_1d WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
  device_id,
  max(site_id) AS site_id,
  max(device_type) AS device_type,
  time_bucket(INTERVAL '1 day', window_start) AS window_start,
  count(*) AS window_count,
  sum(reading_count)::bigint AS reading_count,
  min(temp_min) AS temp_min,
  max(temp_max) AS temp_max,
  sum(reading_count * temp_avg) / nullif(sum(reading_count) FILTER (WHERE temp_avg IS NOT NULL), 0)::double precision AS temp_avg,
  CASE WHEN count(temp_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (temp_stddev ^ 2 + temp_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE temp_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * temp_avg) / nullif(sum(reading_count) FILTER (WHERE temp_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS temp_stddev,
  min(humidity_min) AS humidity_min,
  max(humidity_max) AS humidity_max,
  sum(reading_count * humidity_avg) / nullif(sum(reading_count) FILTER (WHERE humidity_avg IS NOT NULL), 0)::double precision AS humidity_avg,
  CASE WHEN count(humidity_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (humidity_stddev ^ 2 + humidity_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE humidity_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * humidity_avg) / nullif(sum(reading_count) FILTER (WHERE humidity_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS humidity_stddev,
  min(vibration_min) AS vibration_min,
  max(vibration_max) AS vibration_max,
  sum(reading_count * vibration_avg) / nullif(sum(reading_count) FILTER (WHERE vibration_avg IS NOT NULL), 0)::double precision AS vibration_avg,
  CASE WHEN count(vibration_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (vibration_stddev ^ 2 + vibration_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE vibration_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * vibration_avg) / nullif(sum(reading_count) FILTER (WHERE vibration_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS vibration_stddev,
  min(battery_min) AS battery_min,
  max(battery_max) AS battery_max,
  sum(reading_count * battery_avg) / nullif(sum(reading_count) FILTER (WHERE battery_avg IS NOT NULL), 0)::double precision AS battery_avg,
  CASE WHEN count(battery_avg) > 0 THEN sqrt(greatest(0.0,
    sum(reading_count * (battery_stddev ^ 2 + battery_avg ^ 2)) / nullif(sum(reading_count) FILTER (WHERE battery_avg IS NOT NULL), 0)::double precision
    - (sum(reading_count * battery_avg) / nullif(sum(reading_count) FILTER (WHERE battery_avg IS NOT NULL), 0)::double precision) ^ 2)) END AS battery_stddev,
  min(first_event_time) AS first_event_time,
  max(last_event_time) AS last_event_time
FROM device_agg_1m
GROUP BY device_id, time_bucket(INTERVAL '1 day', window_start)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('device_agg_1h', start_offset => INTERVAL '3 days',
                                       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('device_agg_1d', start_offset => INTERVAL '3 days',
                                       end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');

ALTER TABLE device_agg_1m SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                               timescaledb.compress_orderby = 'window_start DESC');
SELECT add_compression_policy('device_agg_1m', compress_after => INTERVAL '7 days');

SELECT add_retention_policy('device_agg_1m', drop_after => INTERVAL '90 days');
SELECT add_retention_policy('site_agg_5m', drop_after => INTERVAL '90 days');
SELECT add_retention_policy('device_agg_1h', drop_after => INTERVAL '730 days');
