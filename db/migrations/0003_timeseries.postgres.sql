-- Time-series tables on plain PostgreSQL (no TimescaleDB): native range partitioning by month.
-- Twin of 0003_timeseries.timescale.sql; same tables, same rollup names and columns.
--
--   * device_agg_1m and site_agg_5m are PARTITION BY RANGE (window_start) with monthly partitions
--     <table>_pYYYYMM made by kappa_ensure_partitions(table, from, to), and a DEFAULT partition
--     so that no insert ever fails; kappa_ensure_partitions moves rows of a new month out of the
--     DEFAULT partition before attaching it. The migration creates last month to 3 months ahead;
--     `kappa db refresh` extends that window.
--   * The primary key includes the partition key (a partitioned table requires it). A BRIN index
--     on window_start serves time-range scans across devices (the primary key serves per device).
--   * device_agg_1h / device_agg_1d are materialized views with a unique index, refreshed with
--     REFRESH MATERIALIZED VIEW CONCURRENTLY by kappa_refresh_rollups() (`kappa db refresh`).
--     Unlike TimescaleDB's continuous aggregates they are recomputed from device_agg_1m, so
--     rollups of dropped partitions disappear on the next refresh.
--   * Retention: kappa_drop_partitions_older_than(table, interval) (`kappa db retention`).
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
) PARTITION BY RANGE (window_start);
CREATE TABLE device_agg_1m_default PARTITION OF device_agg_1m DEFAULT;
CREATE INDEX device_agg_1m_window_brin ON device_agg_1m USING brin (window_start);
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
) PARTITION BY RANGE (window_start);
CREATE TABLE site_agg_5m_default PARTITION OF site_agg_5m DEFAULT;
CREATE INDEX site_agg_5m_window_brin ON site_agg_5m USING brin (window_start);
CREATE TRIGGER site_agg_5m_touch BEFORE UPDATE ON site_agg_5m
  FOR EACH ROW EXECUTE FUNCTION kappa_touch_updated_at();

-- Monthly partitions covering [from_ts, to_ts) (whole months): returns how many it created.
CREATE OR REPLACE FUNCTION kappa_ensure_partitions(tbl regclass, from_ts timestamp, to_ts timestamp)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  key_column   text;
  default_part regclass;
  schema_name  text;
  base_name    text;
  part_name    text;
  lower_bound  timestamp := date_trunc('month', from_ts);
  upper_bound  timestamp;
  created      integer := 0;
BEGIN
  SELECT a.attname, nullif(p.partdefid, 0)::regclass INTO key_column, default_part
    FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
   WHERE p.partrelid = tbl AND p.partstrat = 'r';
  IF key_column IS NULL THEN
    RAISE EXCEPTION '% is not range-partitioned on a column', tbl;
  END IF;
  SELECT n.nspname, c.relname INTO schema_name, base_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  WHILE lower_bound < to_ts LOOP
    upper_bound := lower_bound + INTERVAL '1 month';
    part_name := base_name || '_p' || to_char(lower_bound, 'YYYYMM');
    IF to_regclass(format('%I.%I', schema_name, part_name)) IS NULL THEN
      EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS)', schema_name, part_name, tbl);
      IF default_part IS NOT NULL THEN
        -- Rows of this month that already landed in DEFAULT move to the new partition (else
        -- ATTACH fails); the lock keeps new ones from arriving in between.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= %L AND %I < %L RETURNING *) '
                       'INSERT INTO %I.%I SELECT * FROM moved',
                       default_part, key_column, lower_bound, key_column, upper_bound, schema_name, part_name);
      END IF;
      EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                     tbl, schema_name, part_name, lower_bound, upper_bound);
      created := created + 1;
    END IF;
    lower_bound := upper_bound;
  END LOOP;
  RETURN created;
END;
$$;

-- Retention: drops the partitions whose whole range is older than now (UTC) - older_than, and
-- deletes such rows from the DEFAULT partition. One row per partition touched.
CREATE OR REPLACE FUNCTION kappa_drop_partitions_older_than(tbl regclass, older_than interval)
RETURNS TABLE (partition_name text, rows_removed bigint) LANGUAGE plpgsql AS $$
DECLARE
  cutoff      timestamp := (now() AT TIME ZONE 'UTC') - older_than;
  key_column  text;
  part        record;
  upper_bound timestamp;
  removed     bigint;
BEGIN
  SELECT a.attname INTO key_column
    FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
   WHERE p.partrelid = tbl AND p.partstrat = 'r';
  IF key_column IS NULL THEN
    RAISE EXCEPTION '% is not range-partitioned on a column', tbl;
  END IF;
  FOR part IN
    SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = tbl
     ORDER BY 1
  LOOP
    IF part.bound = 'DEFAULT' THEN
      EXECUTE format('DELETE FROM %s WHERE %I < %L', part.rel, key_column, cutoff);
      GET DIAGNOSTICS removed = ROW_COUNT;
      IF removed > 0 THEN
        partition_name := part.rel::text; rows_removed := removed; RETURN NEXT;
      END IF;
      CONTINUE;
    END IF;
    upper_bound := substring(part.bound FROM $re$TO \('([^']+)'\)$re$)::timestamp;
    IF upper_bound IS NOT NULL AND upper_bound <= cutoff THEN
      partition_name := part.rel::text;  -- before the drop: a dropped regclass prints as its oid
      EXECUTE format('SELECT count(*) FROM %s', part.rel) INTO removed;
      EXECUTE format('DROP TABLE %s', part.rel);
      rows_removed := removed; RETURN NEXT;
    END IF;
  END LOOP;
END;
$$;

SELECT kappa_ensure_partitions(t, date_trunc('month', now() AT TIME ZONE 'UTC') - INTERVAL '1 month',
                               date_trunc('month', now() AT TIME ZONE 'UTC') + INTERVAL '3 months')
  FROM unnest(ARRAY['device_agg_1m', 'site_agg_5m']::regclass[]) AS t;

CREATE MATERIALIZED VIEW device_agg_1h AS
SELECT
  device_id,
  max(site_id) AS site_id,
  max(device_type) AS device_type,
  date_trunc('hour', window_start) AS window_start,
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
GROUP BY device_id, date_trunc('hour', window_start)
WITH DATA;
CREATE UNIQUE INDEX device_agg_1h_key ON device_agg_1h (device_id, window_start);
CREATE INDEX device_agg_1h_window_idx ON device_agg_1h (window_start);

CREATE MATERIALIZED VIEW device_agg_1d AS
SELECT
  device_id,
  max(site_id) AS site_id,
  max(device_type) AS device_type,
  date_trunc('day', window_start) AS window_start,
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
GROUP BY device_id, date_trunc('day', window_start)
WITH DATA;
CREATE UNIQUE INDEX device_agg_1d_key ON device_agg_1d (device_id, window_start);
CREATE INDEX device_agg_1d_window_idx ON device_agg_1d (window_start);

-- `kappa db refresh`: recompute the rollups without blocking readers.
CREATE OR REPLACE FUNCTION kappa_refresh_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  REFRESH MATERIALIZED VIEW CONCURRENTLY device_agg_1h;
  REFRESH MATERIALIZED VIEW CONCURRENTLY device_agg_1d;
END;
$$;
