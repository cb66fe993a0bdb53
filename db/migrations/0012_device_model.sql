-- The device's model in the 1-minute aggregates: device_agg_1m.device_model is the model of the device
-- registry's version in force at the window's first reading by event time, the version site_id and
-- device_type come from (sql/aggregates/windows.sql); NULL when no version was in force then (readings
-- do not send a model) or the version names none, and in every row written before this migration.
--
-- One file for both flavours: a nullable column without a default is a catalog change only, on a
-- month-partitioned table (it reaches every partition, DEFAULT included) as on a TimescaleDB hypertable
-- whose chunks are compressed (compressed chunks read it as NULL; tests/integration/
-- test_migrations_timescale.py applies this after compressing). No rollup (0003) reads it.

ALTER TABLE device_agg_1m ADD COLUMN IF NOT EXISTS device_model TEXT;

-- Replayed versions of the aggregation job (`kappa replay`: device_agg_1m_<version>, made LIKE the live
-- table) get it too, so their job can write it, `compare` sees it on both sides and `promote` can point
-- the reader view at them.
DO $$
DECLARE
  versioned regclass;
BEGIN
  IF to_regclass('replay_versions') IS NULL THEN
    RETURN;
  END IF;
  FOR versioned IN
    SELECT to_regclass(format('%I', 'device_agg_1m_' || version)) FROM replay_versions WHERE job = 'aggregate'
  LOOP
    IF versioned IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS device_model TEXT', versioned);
    END IF;
  END LOOP;
END
$$;

-- The reader view (0004; jobs/aggregate.py declares the same SELECT list for `promote`) gains the column
-- at its end: CREATE OR REPLACE VIEW may only append columns. It keeps reading the table it reads now,
-- the live one or a promoted version's (`kappa replay promote`), so the migration does not undo a
-- promotion.
DO $$
DECLARE
  source text;
BEGIN
  SELECT format('%I', c.relname) INTO source
  FROM pg_rewrite r
  JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
  JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p')
  WHERE r.ev_class = 'v_device_1m'::regclass AND c.relname LIKE 'device\_agg\_1m%'
  LIMIT 1;
  EXECUTE format($view$
    CREATE OR REPLACE VIEW v_device_1m AS
    SELECT
      device_id, site_id, device_type, window_start, window_end, reading_count,
      temp_min, temp_max, temp_avg, temp_first, temp_last, temp_stddev,
      humidity_min, humidity_max, humidity_avg, humidity_first, humidity_last, humidity_stddev,
      vibration_min, vibration_max, vibration_avg, vibration_first, vibration_last, vibration_stddev,
      battery_min, battery_max, battery_avg, battery_first, battery_last, battery_stddev,
      first_event_time, last_event_time, updated_at, device_model
    FROM %s
  $view$, COALESCE(source, 'device_agg_1m'));
END
$$;
