-- reads: alerts_final
-- defines: -
-- writes: alerts_sink, alerts_topic
-- What the alerting job writes; both INSERTs run as one Flink job (one statement set).
-- detected_at is the event time the pattern completed (last_event_time), never the wall clock.
INSERT INTO alerts_sink
SELECT alert_id, device_id, site_id, alert_type, severity,
       first_event_time, last_event_time, trigger_json,
       rule_version, last_event_time
FROM alerts_final;

INSERT INTO alerts_topic
SELECT alert_id, device_id, site_id, alert_type, severity,
       first_event_time, last_event_time, trigger_map,
       rule_version, last_event_time
FROM alerts_final;
