-- reads: telemetry_valid
-- defines: telemetry_sequenced, telemetry_late, telemetry_accepted
-- Late readings, decided from the log (the aggregation job; the alerting job keeps ontime.sql).
--
-- A reading is late when its event time is more than watermark_delay + allowed_lateness behind the
-- newest event time read so far in its own Kafka partition, in offset order. One partition is read by
-- one source subtask, so arrival order here is offset order, whatever the parallelism and however fast
-- the partitions are read: the same offsets give the same late set at device pace and in a catch-up.
-- MAX ... OVER (PARTITION BY kafka_partition ORDER BY proc_time) is that running maximum (a few bytes of
-- state per partition); the event-time attribute passes through it, so the windows still follow it.
--
-- Safety net: a reading the partition rule keeps can still be behind the job's watermark by more than
-- allowed_lateness when idle partitions were left out of the watermark (live runs only: bounded runs
-- have idleness off). The windows would drop it silently, so it is routed late as well.
CREATE TEMPORARY VIEW telemetry_sequenced AS
SELECT *,
  MAX(event_ms) OVER (PARTITION BY kafka_partition ORDER BY proc_time
                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS partition_max_ms
FROM (SELECT *, PROCTIME() AS proc_time FROM telemetry_valid);

-- The SQL lint's Flink dialect cannot parse TIMESTAMPADD(SECOND, ...): parse errors off from here
-- noqa: disable=PRS
CREATE TEMPORARY VIEW telemetry_late AS
SELECT *
FROM telemetry_sequenced
WHERE event_ms <= partition_max_ms - CAST(${watermark_delay_s} AS BIGINT) * 1000
                  - CAST(${allowed_lateness_ms} AS BIGINT)
   OR (CURRENT_WATERMARK(event_time) IS NOT NULL
       AND TIMESTAMPADD(SECOND, ${allowed_lateness_s}, event_time) <= CURRENT_WATERMARK(event_time));

-- Everything else enters the windows: on time, or behind the watermark by at most allowed_lateness
-- (then it updates a window that has already fired).
CREATE TEMPORARY VIEW telemetry_accepted AS
SELECT *
FROM telemetry_sequenced
WHERE event_ms > partition_max_ms - CAST(${watermark_delay_s} AS BIGINT) * 1000 - CAST(${allowed_lateness_ms} AS BIGINT)
  AND (CURRENT_WATERMARK(event_time) IS NULL
       OR TIMESTAMPADD(SECOND, ${allowed_lateness_s}, event_time) > CURRENT_WATERMARK(event_time));
