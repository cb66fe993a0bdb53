-- reads: -
-- defines: decode_telemetry, telemetry_event_time, FIRST_BY_TIME, LAST_BY_TIME, STDDEV_POP_STABLE
-- defines: BYTE_LENGTH
-- Functions the telemetry SQL uses, implemented in Java (udfs/java, built by `make setup`) so the
-- hot path stays in the JVM. decode_telemetry never throws on bad input: it returns dlq_reason.
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS decode_telemetry AS 'io.kappa.udfs.DecodeTelemetry' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS telemetry_event_time AS 'io.kappa.udfs.TelemetryEventTime' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS FIRST_BY_TIME AS 'io.kappa.udfs.FirstByTime' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS LAST_BY_TIME AS 'io.kappa.udfs.LastByTime' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS STDDEV_POP_STABLE AS 'io.kappa.udfs.StddevPop' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS BYTE_LENGTH AS 'io.kappa.udfs.ByteLength' LANGUAGE JAVA;
