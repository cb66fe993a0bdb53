package io.kappa.udfs;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every dead-letter reason, v1+v2+v3 into one row, the HTTP lookup and its cache; mirrors tests/unit/test_avro_decoder.py. */
class TelemetryDecoderTest {
    static final String V1 = resource("/telemetry/v1.avsc");
    static final String V2 = resource("/telemetry/v2.avsc");
    static final String V3 = resource("/telemetry/v3.avsc");
    static final String NO_SITE = "{\"type\":\"record\",\"name\":\"Telemetry\",\"namespace\":\"io.kappa.iot\","
            + "\"fields\":[{\"name\":\"device_id\",\"type\":\"string\"}]}";
    static final long NOW = 1_767_225_600_000L; // 2026-01-01T00:00:00Z
    static final long DAY = 86_400_000L;
    static final int SITE = TelemetryDecoder.FLAT_FIELDS.indexOf("site_id");

    final Map<Integer, String> schemas = Map.of(1, V1, 2, V2, 3, NO_SITE, 4, "{not json", 5, V3);
    final List<Integer> calls = new ArrayList<>();
    final TelemetryDecoder decoder = new TelemetryDecoder(id -> {
        calls.add(id);
        return schemas.get(id);
    });
    HttpServer server;

    @AfterEach
    void stopServer() {
        if (server != null) {
            server.stop(0);
        }
    }

    static String resource(String path) {
        try (InputStream in = TelemetryDecoderTest.class.getResourceAsStream(path)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException exc) {
            throw new RuntimeException(exc);
        }
    }

    static GenericRecord reading(String schemaText, Consumer<GenericRecord> overrides) {
        Schema schema = new Schema.Parser().parse(schemaText);
        GenericRecord rec = new GenericData.Record(schema);
        rec.put("device_id", "dev-00001");
        rec.put("site_id", "site-01");
        rec.put("device_type", new GenericData.EnumSymbol(schema.getField("device_type").schema(), "environmental"));
        rec.put("seq", 17L);
        rec.put("event_time", NOW - 60_000);
        rec.put("status", new GenericData.EnumSymbol(schema.getField("status").schema(), "OK"));
        rec.put("firmware_version", "1.5.0");
        rec.put("temperature_c", 21.5);
        rec.put("humidity_pct", 48.2);
        rec.put("pressure_hpa", 1012.9);
        rec.put("battery_pct", 88.0);
        if (schema.getField("location") != null) {
            rec.put("signal_rssi_dbm", -71);
            Schema loc = schema.getField("location").schema().getTypes().get(1);
            GenericRecord location = new GenericData.Record(loc);
            location.put("lat", 48.1);
            location.put("lon", 11.5);
            location.put("alt_m", 520.0);
            rec.put("location", location);
        }
        overrides.accept(rec);
        return rec;
    }

    static GenericRecord reading(String schemaText) {
        return reading(schemaText, r -> { });
    }

    static byte[] frame(int schemaId, GenericRecord record) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.write(0);
            out.write(ByteBuffer.allocate(4).putInt(schemaId).array());
            BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
            new GenericDatumWriter<GenericRecord>(record.getSchema()).write(record, encoder);
            encoder.flush();
            return out.toByteArray();
        } catch (IOException exc) {
            throw new RuntimeException(exc);
        }
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static String reason(Object[] row) {
        return (String) row[TelemetryDecoder.REASON_POS];
    }

    static String error(Object[] row) {
        return (String) row[TelemetryDecoder.ERROR_POS];
    }

    static Object field(Object[] row, String name) {
        return row[TelemetryDecoder.FLAT_FIELDS.indexOf(name)];
    }

    static void assertFailed(Object[] row, TelemetryDecoder.Reason reason) {
        assertEquals(reason.name(), reason(row), () -> "error: " + error(row));
        assertNotNull(error(row));
        for (int i = 0; i < TelemetryDecoder.SCHEMA_ID_POS; i++) {
            assertNull(row[i], TelemetryDecoder.FLAT_FIELDS.get(i));
        }
    }

    @Test
    void rowTypeMatchesTheFlatFields() {
        assertEquals(21, TelemetryDecoder.ROW_ARITY);
        String type = DecodeTelemetry.ROW_TYPE;
        List<String> names = new ArrayList<>();
        for (String part : type.substring(4, type.length() - 1).split(",")) {
            names.add(part.trim().split(" ")[0]);
        }
        List<String> expected = new ArrayList<>(TelemetryDecoder.FLAT_FIELDS);
        expected.add("dlq_reason");
        expected.add("dlq_error");
        assertEquals(expected, names);
    }

    @Test
    void poisonPillsAreInvalidValuesWithTheFieldNamed() {
        Map<String, Consumer<GenericRecord>> cases = new java.util.LinkedHashMap<>();
        cases.put("device_id contains a NUL byte", r -> r.put("device_id", "dev\u0000-1"));
        cases.put("device_id is empty", r -> r.put("device_id", ""));
        cases.put("site_id is 129 characters long (limit 128)", r -> r.put("site_id", "s".repeat(129)));
        cases.put("humidity_pct is outside its range in limits.json", r -> r.put("humidity_pct", 1e300));
        cases.put("battery_pct is outside its range in limits.json", r -> r.put("battery_pct", -5.0));
        cases.put("signal_rssi_dbm is outside its range in limits.json", r -> r.put("signal_rssi_dbm", 40));
        for (Map.Entry<String, Consumer<GenericRecord>> c : cases.entrySet()) {
            Object[] row = decoder.decode(frame(2, reading(V2, c.getValue())), NOW);
            assertFailed(row, TelemetryDecoder.Reason.INVALID_VALUE);
            assertEquals(c.getKey(), error(row));
        }
        Object[] edge = decoder.decode(frame(2, reading(V2, r -> {
            r.put("device_id", "\u00e9".repeat(128));
            r.put("humidity_pct", 100.0);
        })), NOW);
        assertNull(reason(edge), () -> error(edge));
    }

    @Test
    void oversizedRecordsAreDeadLetteredBeforeDecoding() {
        byte[] big = frame(2, reading(V2, r -> r.put("firmware_version", "f".repeat(70_000))));
        assertFailed(decoder.decode(big, NOW), TelemetryDecoder.Reason.OVERSIZED);
    }

    @Test
    void v2DecodesToAFlatRow() {
        Object[] row = decoder.decode(frame(2, reading(V2)), NOW);
        assertArrayEquals(new Object[] {"dev-00001", "site-01", "environmental", 17L, NOW - 60_000, "OK", "1.5.0",
                21.5, 48.2, 1012.9, null, null, 88.0, -71, 48.1, 11.5, 520.0, null, 2, null, null}, row);
    }

    @Test
    void v3AddsUptimeThatOlderWritersReadAsNull() {
        Object[] v3 = decoder.decode(frame(5, reading(V3, r -> r.put("uptime_s", 86_400L))), NOW);
        Object[] v2 = decoder.decode(frame(2, reading(V2)), NOW);
        Object[] v1 = decoder.decode(frame(1, reading(V1)), NOW);
        assertNull(reason(v3), () -> error(v3));
        assertEquals(86_400L, field(v3, "uptime_s"));
        assertEquals(5, field(v3, "schema_id"));
        assertNull(field(v2, "uptime_s"));
        assertNull(field(v1, "uptime_s"));
        for (String name : TelemetryDecoder.FLAT_FIELDS) {
            if (!name.equals("schema_id") && !name.equals("uptime_s")) {
                assertEquals(field(v2, name), field(v3, name), name);
            }
        }
        assertNull(field(decoder.decode(frame(5, reading(V3)), NOW), "uptime_s")); // v3 firmware without it
        Object[] negative = decoder.decode(frame(5, reading(V3, r -> r.put("uptime_s", -1L))), NOW);
        assertFailed(negative, TelemetryDecoder.Reason.INVALID_VALUE);
        assertEquals("uptime_s is outside its range in limits.json", error(negative));
    }

    @Test
    void v1AndV2WritersDecodeIntoOneRowType() {
        Object[] v1 = decoder.decode(frame(1, reading(V1)), NOW);
        Object[] v2 = decoder.decode(frame(2, reading(V2, r -> r.put("location", null))), NOW);
        assertNull(reason(v1), () -> error(v1));
        assertNull(reason(v2), () -> error(v2));
        assertNull(field(v1, "signal_rssi_dbm"));
        assertNull(field(v1, "location_lat"));
        assertEquals(1, field(v1, "schema_id"));
        assertEquals(2, field(v2, "schema_id"));
        assertEquals(-71, field(v2, "signal_rssi_dbm"));
        assertNull(field(v2, "location_alt_m"));
        for (String name : TelemetryDecoder.FLAT_FIELDS) {
            if (!name.equals("schema_id") && !name.equals("signal_rssi_dbm") && !name.startsWith("location")) {
                assertEquals(field(v2, name), field(v1, name), name);
            }
        }
    }

    @Test
    void tooShort() {
        for (byte[] payload : new byte[][] {null, {}, {0}, {0, 0, 0, 2}}) {
            Object[] row = decoder.decode(payload, NOW);
            assertFailed(row, TelemetryDecoder.Reason.TOO_SHORT);
            assertNull(field(row, "schema_id"));
        }
        assertEquals("payload is null; a Confluent frame needs at least 5", error(decoder.decode(null, NOW)));
        assertEquals("payload is 4 bytes; a Confluent frame needs at least 5", error(decoder.decode(new byte[4], NOW)));
    }

    @Test
    void badMagic() {
        Object[] json = decoder.decode("{\"device_id\": \"dev-1\"}".getBytes(StandardCharsets.UTF_8), NOW);
        assertFailed(json, TelemetryDecoder.Reason.BAD_MAGIC);
        assertEquals("first byte is 0x7b, expected magic byte 0x00", error(json));
        assertFailed(decoder.decode(new byte[] {1, 0, 0, 0, 2, 'a', 'b', 'c'}, NOW), TelemetryDecoder.Reason.BAD_MAGIC);
        assertFailed(decoder.decode(new byte[] {(byte) 0xff, 0, 0, 0, 2}, NOW), TelemetryDecoder.Reason.BAD_MAGIC);
    }

    @Test
    void unknownSchemaId() {
        Object[] unknown = decoder.decode(frame(99, reading(V2)), NOW);
        assertFailed(unknown, TelemetryDecoder.Reason.UNKNOWN_SCHEMA_ID);
        assertEquals(99, field(unknown, "schema_id"));
        assertEquals("schema id 99 is not registered", error(unknown));
        byte[] good = frame(2, reading(V2));
        good[4] = 4;
        Object[] unparseable = decoder.decode(good, NOW);
        assertFailed(unparseable, TelemetryDecoder.Reason.UNKNOWN_SCHEMA_ID);
        assertTrue(error(unparseable).contains("not a valid Avro schema"), error(unparseable));
        byte[] negative = frame(2, reading(V2));
        negative[1] = (byte) 0xff;
        assertEquals(ByteBuffer.wrap(negative, 1, 4).getInt(), field(decoder.decode(negative, NOW), "schema_id"));
    }

    @Test
    void corruptBodyTruncatedAtEveryLength() {
        byte[] good = frame(2, reading(V2));
        for (int cut = 5; cut < good.length; cut++) {
            Object[] row = decoder.decode(Arrays.copyOf(good, cut), NOW);
            assertFailed(row, TelemetryDecoder.Reason.CORRUPT_BODY);
            assertEquals(2, field(row, "schema_id"));
        }
    }

    @Test
    void corruptBodyTrailingBytesAndGarbage() {
        byte[] good = frame(2, reading(V2));
        Object[] trailing = decoder.decode(concat(good, new byte[] {0, 1}), NOW);
        assertFailed(trailing, TelemetryDecoder.Reason.CORRUPT_BODY);
        assertEquals("2 trailing bytes after the Avro record", error(trailing));
        byte[] badEnum = good.clone();
        badEnum[5 + 1 + "dev-00001".length() + 1 + "site-01".length()] = 0x7e; // device_type index 63
        assertFailed(decoder.decode(badEnum, NOW), TelemetryDecoder.Reason.CORRUPT_BODY);
        byte[] badUtf8 = good.clone();
        badUtf8[5 + 1] = (byte) 0xff; // first byte of device_id
        Object[] utf8 = decoder.decode(badUtf8, NOW);
        assertFailed(utf8, TelemetryDecoder.Reason.CORRUPT_BODY);
        assertTrue(error(utf8).startsWith("MalformedInputException"), error(utf8));
        byte[] negativeLength = good.clone();
        negativeLength[5] = 0x03; // device_id length -2
        assertFailed(decoder.decode(negativeLength, NOW), TelemetryDecoder.Reason.CORRUPT_BODY);
    }

    @Test
    void multiByteUtf8IsKept() {
        Object[] row = decoder.decode(frame(2, reading(V2, r -> r.put("site_id", "Werk München ✓"))), NOW);
        assertEquals("Werk München ✓", field(row, "site_id"));
    }

    @Test
    void resolutionFailed() {
        Schema noSite = new Schema.Parser().parse(NO_SITE);
        GenericRecord rec = new GenericData.Record(noSite);
        rec.put("device_id", "dev-1");
        Object[] row = decoder.decode(frame(3, rec), NOW);
        assertFailed(row, TelemetryDecoder.Reason.RESOLUTION_FAILED);
        assertEquals("schema id 3: No default value for field site_id in io.kappa.iot.Telemetry", error(row));
        assertEquals(3, field(row, "schema_id"));
        // like fastavro, the writer's own fields are read before a missing reader field is reported
        assertFailed(decoder.decode(new byte[] {0, 0, 0, 0, 3}, NOW), TelemetryDecoder.Reason.CORRUPT_BODY);
    }

    @Test
    void writerRecordNameMustMatch() {
        String other = V1.replace("\"name\": \"Telemetry\"", "\"name\": \"Reading\"");
        TelemetryDecoder named = new TelemetryDecoder(id -> id == 5 ? other : id == 6 ? "\"string\"" : null);
        Object[] row = named.decode(frame(5, reading(other)), NOW);
        assertFailed(row, TelemetryDecoder.Reason.RESOLUTION_FAILED);
        assertTrue(error(row).contains("io.kappa.iot.Reading"), error(row));
        assertFailed(named.decode(new byte[] {0, 0, 0, 0, 6}, NOW), TelemetryDecoder.Reason.RESOLUTION_FAILED);
    }

    @Test
    void invalidValue() {
        List<Consumer<GenericRecord>> cases = List.of(
                r -> r.put("temperature_c", Double.NaN),
                r -> r.put("humidity_pct", Double.POSITIVE_INFINITY),
                r -> r.put("battery_pct", Double.NEGATIVE_INFINITY),
                r -> ((GenericRecord) r.get("location")).put("lat", Double.NaN));
        for (Consumer<GenericRecord> overrides : cases) {
            Object[] row = decoder.decode(frame(2, reading(V2, overrides)), NOW);
            assertFailed(row, TelemetryDecoder.Reason.INVALID_VALUE);
            assertEquals(2, field(row, "schema_id"));
        }
        assertEquals("temperature_c is nan",
                error(decoder.decode(frame(2, reading(V2, r -> r.put("temperature_c", Double.NaN))), NOW)));
        assertEquals("battery_pct is -inf",
                error(decoder.decode(frame(2, reading(V2, r -> r.put("battery_pct", Double.NEGATIVE_INFINITY))), NOW)));
        Object[] ahead = decoder.decode(frame(2, reading(V2, r -> r.put("event_time", NOW + DAY + 1))), NOW);
        assertFailed(ahead, TelemetryDecoder.Reason.FUTURE_EVENT_TIME);
        assertEquals("event_time " + (NOW + DAY + 1) + " is " + (DAY + 1) + " ms after the reference time " + NOW
                        + " (bound " + DAY + " ms)", error(ahead));
    }

    @Test
    void futureBoundIsConfigurableAndInclusive() {
        byte[] payload = frame(2, reading(V2, r -> r.put("event_time", NOW + DAY)));
        assertNull(reason(decoder.decode(payload, NOW)));
        TelemetryDecoder strict = new TelemetryDecoder(schemas::get, 1000);
        assertEquals("FUTURE_EVENT_TIME", reason(strict.decode(payload, NOW)));
        assertEquals("FUTURE_EVENT_TIME", reason(decoder.decode(payload, NOW, 1000)));
        assertNull(reason(strict.decode(payload, NOW, DAY)));
        assertEquals(1000, new DecodeTelemetry(1000).maxFutureMs());
        assertEquals(DAY, new DecodeTelemetry().maxFutureMs());
    }

    @Test
    void lookupCalledOncePerId() {
        for (int i = 0; i < 5; i++) {
            decoder.decode(frame(1, reading(V1)), NOW);
            decoder.decode(frame(2, reading(V2)), NOW);
            decoder.decode(frame(99, reading(V2)), NOW); // unknown ids are cached too
        }
        assertEquals(List.of(1, 2, 99), calls.stream().sorted().toList());
    }

    @Test
    void neverThrowsOnGarbage() {
        Random rng = new Random(7);
        Set<String> reasons = new java.util.TreeSet<>();
        for (int i = 0; i < 20_000; i++) {
            byte[] body = new byte[rng.nextInt(80)];
            rng.nextBytes(body);
            byte[] header = {0, 0, 0, 0, (byte) (1 + rng.nextInt(3))};
            Object[] row = decoder.decode(concat(header, body), NOW);
            assertEquals(TelemetryDecoder.ROW_ARITY, row.length);
            if (reason(row) != null) {
                reasons.add(reason(row));
                TelemetryDecoder.Reason.valueOf(reason(row));
            }
        }
        assertTrue(reasons.contains("CORRUPT_BODY"), reasons.toString());
    }

    @Test
    void reuseDoesNotLeakBetweenRecords() {
        decoder.decode(frame(2, reading(V2)), NOW);
        decoder.decode(Arrays.copyOf(frame(2, reading(V2)), 40), NOW); // a failure in between
        Object[] row = decoder.decode(frame(2, reading(V2, r -> {
            r.put("location", null);
            r.put("signal_rssi_dbm", null);
        })), NOW);
        assertNull(field(row, "location_lat"));
        assertNull(field(row, "signal_rssi_dbm"));
        assertEquals(21.5, field(row, "temperature_c"));
    }

    // ---------------------------------------------------------------- registry over HTTP

    Map<Integer, AtomicInteger> serve(Map<Integer, Object> answers, String expectedAuth) throws IOException {
        Map<Integer, AtomicInteger> hits = new ConcurrentHashMap<>();
        ObjectMapper json = new ObjectMapper();
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/schemas/ids/", exchange -> {
            String path = exchange.getRequestURI().getPath();
            int id = Integer.parseInt(path.substring(path.lastIndexOf('/') + 1));
            hits.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet();
            Object answer = answers.get(id);
            int status;
            String body;
            if (expectedAuth != null && !expectedAuth.equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
                status = 401;
                body = "{\"error_code\":401}";
            } else if (answer instanceof String) {
                status = 200;
                body = json.writeValueAsString(Map.of("schema", answer));
            } else if (answer instanceof Integer) {
                status = (Integer) answer;
                body = "{\"error_code\":" + status + "0" + ",\"message\":\"status " + status + "\"}";
            } else {
                status = 404;
                body = "{\"error_code\":40403,\"message\":\"Schema not found\"}";
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        server.start();
        return hits;
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/";
    }

    @Test
    void registryLookupOverHttpCachesPerId() throws IOException {
        Map<Integer, AtomicInteger> hits = serve(Map.of(1, V1, 2, V2), null);
        DecodeTelemetry udf = new DecodeTelemetry();
        for (int i = 0; i < 10; i++) {
            Row v1 = udf.eval(frame(1, reading(V1)), url(), NOW);
            Row v2 = udf.eval(frame(2, reading(V2)), url(), NOW);
            Row unknown = udf.eval(frame(7, reading(V2)), url(), NOW);
            assertEquals(TelemetryDecoder.ROW_ARITY, v1.getArity());
            assertNull(v1.getField(TelemetryDecoder.REASON_POS), () -> String.valueOf(v1.getField(TelemetryDecoder.ERROR_POS)));
            assertEquals("dev-00001", v2.getField(0));
            assertEquals(-71, v2.getField(13));
            assertEquals("UNKNOWN_SCHEMA_ID", unknown.getField(TelemetryDecoder.REASON_POS));
            assertEquals(7, unknown.getField(TelemetryDecoder.SCHEMA_ID_POS));
        }
        assertEquals(Map.of(1, 1, 2, 1, 7, 1), Map.of(1, hits.get(1).get(), 2, hits.get(2).get(), 7, hits.get(7).get()));
        Row clock = udf.eval(frame(2, reading(V2, r -> r.put("event_time", System.currentTimeMillis()))), url());
        assertNull(clock.getField(TelemetryDecoder.REASON_POS));
        Row future = udf.eval(frame(2, reading(V2, r -> r.put("event_time", System.currentTimeMillis() + 2 * DAY))),
                url(), null);
        assertEquals("FUTURE_EVENT_TIME", future.getField(TelemetryDecoder.REASON_POS));
    }

    @Test
    void eventTimeFunctionAgreesWithTheDecodedRow() throws IOException {
        serve(Map.of(2, V2), null);
        DecodeTelemetry decode = new DecodeTelemetry();
        TelemetryEventTime eventTime = new TelemetryEventTime();
        long now = System.currentTimeMillis();
        Instant recordTs = Instant.ofEpochMilli(now);
        byte[] onTime = frame(2, reading(V2, r -> r.put("event_time", now - 1000)));
        assertEquals(Instant.ofEpochMilli(now - 1000), eventTime.eval(onTime, url(), recordTs, 60_000L));
        assertNull(decode.eval(onTime, url(), recordTs, 60_000L).getField(TelemetryDecoder.REASON_POS));
        // ahead of the record timestamp by more than the bound: no event time, dead-lettered with its reason
        byte[] ahead = frame(2, reading(V2, r -> r.put("event_time", now + 60_001)));
        assertNull(eventTime.eval(ahead, url(), recordTs, 60_000L));
        assertEquals("FUTURE_EVENT_TIME", decode.eval(ahead, url(), recordTs, 60_000L).getField(TelemetryDecoder.REASON_POS));
        assertNotNull(eventTime.eval(ahead, url(), recordTs, 120_000L)); // a wider bound is a different question
        // a forged far-future record timestamp does not widen the bound: the wall clock caps it
        Instant forged = Instant.ofEpochMilli(now + 10 * DAY);
        byte[] farAhead = frame(2, reading(V2, r -> r.put("event_time", now + 5 * DAY)));
        assertNull(eventTime.eval(farAhead, url(), forged, 60_000L));
        assertEquals("FUTURE_EVENT_TIME", decode.eval(farAhead, url(), forged, 60_000L).getField(TelemetryDecoder.REASON_POS));
        // undecodable: no event time either
        assertNull(eventTime.eval(new byte[] {1, 2, 3}, url(), recordTs, 60_000L));
        assertEquals("TOO_SHORT", decode.eval(new byte[] {1, 2, 3}, url(), recordTs, 60_000L).getField(TelemetryDecoder.REASON_POS));
    }

    @Test
    void registryErrorsThrowAndAreNotCached() throws IOException {
        Map<Integer, AtomicInteger> hits = serve(Map.of(2, V2, 8, 500, 9, 503, 10, 401), null);
        DecodeTelemetry udf = new DecodeTelemetry();
        for (int id : new int[] {8, 9, 10}) {
            for (int attempt = 0; attempt < 2; attempt++) {
                SchemaRegistryUnavailableException exc = assertThrows(SchemaRegistryUnavailableException.class,
                        () -> udf.eval(frame(id, reading(V2)), url(), NOW));
                assertTrue(exc.getMessage().contains("answered"), exc.getMessage());
            }
            assertEquals(2, hits.get(id).get()); // an outage is retried, not cached as unknown
        }
        assertNull(udf.eval(frame(2, reading(V2)), url(), NOW).getField(TelemetryDecoder.REASON_POS));
    }

    @Test
    void unreachableRegistryThrows() throws IOException {
        serve(Map.of(), null);
        String dead = url();
        server.stop(0);
        server = null;
        DecodeTelemetry udf = new DecodeTelemetry();
        SchemaRegistryUnavailableException exc = assertThrows(SchemaRegistryUnavailableException.class,
                () -> udf.eval(frame(2, reading(V2)), dead, NOW));
        assertTrue(exc.getMessage().contains("unreachable"), exc.getMessage());
        // framing errors need no registry and still dead-letter
        assertEquals("BAD_MAGIC", udf.eval(new byte[] {9, 9, 9, 9, 9}, dead, NOW).getField(TelemetryDecoder.REASON_POS));
    }

    @Test
    void badRegistryResponsesThrowAndNonAvroIsUnknown() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/schemas/ids/", exchange -> {
            String path = exchange.getRequestURI().getPath();
            String body = path.endsWith("/5") ? "not json" : "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\"}";
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        server.start();
        RegistrySchemaLookup lookup = new RegistrySchemaLookup(url(), Duration.ofSeconds(5), Map.of());
        assertThrows(SchemaRegistryUnavailableException.class, () -> lookup.apply(5));
        assertNull(lookup.apply(6));
        assertEquals("UNKNOWN_SCHEMA_ID", reason(new TelemetryDecoder(lookup).decode(frame(6, reading(V2)), NOW)));
    }

    @Test
    void basicAuthFromEnvironment() throws IOException {
        String auth = "Basic " + Base64.getEncoder().encodeToString("kappa:s3cret".getBytes(StandardCharsets.UTF_8));
        serve(Map.of(2, V2), auth);
        Map<String, String> env = new HashMap<>();
        assertThrows(SchemaRegistryUnavailableException.class,
                () -> new RegistrySchemaLookup(url(), Duration.ofSeconds(5), env).apply(2)); // 401 is an outage
        env.put(RegistrySchemaLookup.USER_ENV, "kappa");
        env.put(RegistrySchemaLookup.PASSWORD_ENV, "s3cret");
        assertEquals(V2, new RegistrySchemaLookup(url(), Duration.ofSeconds(5), env).apply(2));
    }
}
