package io.kappa.udfs;

import org.apache.avro.AvroTypeException;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.Decoder;
import org.apache.avro.util.Utf8;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntFunction;
import java.util.regex.Pattern;

/**
 * Decodes Confluent-framed Avro telemetry into one flat row, never throwing on bad input: the JVM twin of
 * {@code udfs/avro_decoder.py} (same checks in the same order, same reason codes).
 *
 * <p>Wire format: byte 0 = magic 0, bytes 1-4 = big-endian schema id, then the Avro body. Checks: longer than
 * max_record_bytes of limits.json -> OVERSIZED (dead-lettered without its payload); null or
 * shorter than 5 bytes -> TOO_SHORT; first byte != 0 -> BAD_MAGIC; the lookup finds nothing or an
 * unparseable schema -> UNKNOWN_SCHEMA_ID; the writer is not resolvable to the reader -> RESOLUTION_FAILED;
 * Avro decoding fails (incl. invalid UTF-8) or leaves trailing bytes -> CORRUPT_BODY; NaN/inf double, a string
 * with a NUL byte, an empty id, a string over its limit or a number outside its range (limits.json) ->
 * INVALID_VALUE with the field named; event time more than {@code maxFutureMs} after the reference time {@code nowMs} ->
 * FUTURE_EVENT_TIME (such a reading must never reach a watermark).
 *
 * <p>The lookup may throw {@link SchemaRegistryUnavailableException}: that propagates on purpose. Writer
 * schemas (and unknown ids) are cached per id, so the lookup is called once per id.
 *
 * <p>Not thread-safe (it reuses the Avro decoder and records); Flink gives each task its own function
 * instance.
 */
public final class TelemetryDecoder {
    public static final int MAGIC_BYTE = 0;
    public static final int HEADER_SIZE = 5;
    public static final long DAY_MS = 86_400_000L;
    public static final int MAX_ERROR_CHARS = 500;
    public static final String READER_SCHEMA_RESOURCE = "v3.avsc";

    /** Dead-letter reason codes (the {@code reason} field of schemas/avro/dead_letters). */
    public enum Reason {
        BAD_MAGIC, TOO_SHORT, UNKNOWN_SCHEMA_ID, CORRUPT_BODY, RESOLUTION_FAILED, INVALID_VALUE, FUTURE_EVENT_TIME, OVERSIZED
    }

    /** Python's FLAT_FIELDS: the flattened reader schema + schema_id. */
    public static final List<String> FLAT_FIELDS = List.of(
            "device_id", "site_id", "device_type", "seq", "event_time", "status", "firmware_version",
            "temperature_c", "humidity_pct", "pressure_hpa", "vibration_mm_s", "power_w", "battery_pct",
            "signal_rssi_dbm", "location_lat", "location_lon", "location_alt_m", "uptime_s", "schema_id");
    /** Width of a decoded row: FLAT_FIELDS + dlq_reason + dlq_error. */
    public static final int ROW_ARITY = FLAT_FIELDS.size() + 2;
    public static final int SCHEMA_ID_POS = FLAT_FIELDS.size() - 1;
    public static final int REASON_POS = FLAT_FIELDS.size();
    public static final int ERROR_POS = FLAT_FIELDS.size() + 1;

    private static final Pattern MISSING_FIELD = Pattern.compile("missing required field", Pattern.CASE_INSENSITIVE);

    private final IntFunction<String> lookup;
    private final Schema readerSchema;
    private final long maxFutureMs;
    private final String eventTimeField;
    /** Per flat field (without schema_id): the path into the decoded record. */
    private final String[][] paths;
    private final boolean[] isDouble;
    private final int eventTimePos;
    private final ConcurrentHashMap<Integer, Writer> writers = new ConcurrentHashMap<>();
    private final BoundedDecoder decoder = new BoundedDecoder();
    private final Limits limits = Limits.load();

    public TelemetryDecoder(IntFunction<String> lookup, Schema readerSchema, long maxFutureMs) {
        this.lookup = lookup;
        this.readerSchema = readerSchema;
        this.maxFutureMs = maxFutureMs;
        this.eventTimeField = "event_time";
        List<String[]> layout = new ArrayList<>();
        List<Boolean> doubles = new ArrayList<>();
        for (Schema.Field field : readerSchema.getFields()) {
            Schema type = nonNull(field.schema());
            if (type.getType() == Schema.Type.RECORD) {
                for (Schema.Field sub : type.getFields()) {
                    layout.add(new String[] {field.name(), sub.name()});
                    doubles.add(isDoubleType(sub.schema()));
                }
            } else {
                layout.add(new String[] {field.name()});
                doubles.add(isDoubleType(field.schema()));
            }
        }
        List<String> names = new ArrayList<>();
        for (String[] path : layout) {
            names.add(String.join("_", path));
        }
        names.add("schema_id");
        if (!names.equals(FLAT_FIELDS)) {
            throw new IllegalArgumentException("reader schema flattens to " + names + ", the UDF row type is " + FLAT_FIELDS);
        }
        this.paths = layout.toArray(new String[0][]);
        this.isDouble = new boolean[doubles.size()];
        for (int i = 0; i < doubles.size(); i++) {
            isDouble[i] = doubles.get(i);
        }
        this.eventTimePos = FLAT_FIELDS.indexOf(eventTimeField);
    }

    public TelemetryDecoder(IntFunction<String> lookup, long maxFutureMs) {
        this(lookup, loadReaderSchema(), maxFutureMs);
    }

    public TelemetryDecoder(IntFunction<String> lookup) {
        this(lookup, DAY_MS);
    }

    /** The bundled reader schema (schemas/avro/telemetry/v3.avsc, the latest, copied in at build time). */
    public static Schema loadReaderSchema() {
        try (InputStream in = TelemetryDecoder.class.getResourceAsStream(READER_SCHEMA_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource " + READER_SCHEMA_RESOURCE + " missing from the jar");
            }
            return new Schema.Parser().parse(in);
        } catch (IOException exc) {
            throw new UncheckedIOException(exc);
        }
    }

    public long maxFutureMs() {
        return maxFutureMs;
    }

    private static Schema nonNull(Schema schema) {
        if (schema.getType() != Schema.Type.UNION) {
            return schema;
        }
        List<Schema> branches = new ArrayList<>();
        for (Schema branch : schema.getTypes()) {
            if (branch.getType() != Schema.Type.NULL) {
                branches.add(branch);
            }
        }
        if (branches.size() != 1) {
            throw new IllegalArgumentException("only [null, T] unions are supported in the reader schema: " + schema);
        }
        return branches.get(0);
    }

    private static boolean isDoubleType(Schema schema) {
        Schema.Type type = nonNull(schema).getType();
        return type == Schema.Type.DOUBLE || type == Schema.Type.FLOAT;
    }

    /**
     * Decode one payload into an array of {@link #ROW_ARITY} values (FLAT_FIELDS, dlq_reason, dlq_error).
     * Throws only {@link SchemaRegistryUnavailableException} (from the lookup).
     */
    public Object[] decode(byte[] payload, long nowMs) {
        return decode(payload, nowMs, maxFutureMs);
    }

    /** As {@link #decode(byte[], long)}, with the max-future bound given per call. */
    public Object[] decode(byte[] payload, long nowMs, long maxFutureMs) {
        if (payload != null && payload.length > limits.maxRecordBytes) {
            return fail(Reason.OVERSIZED, "payload is " + payload.length + " bytes; the limit is "
                    + limits.maxRecordBytes + " (limits.json)", null);
        }
        if (payload == null || payload.length < HEADER_SIZE) {
            String size = payload == null ? "null" : payload.length + " bytes";
            return fail(Reason.TOO_SHORT, "payload is " + size + "; a Confluent frame needs at least " + HEADER_SIZE, null);
        }
        if (payload[0] != MAGIC_BYTE) {
            return fail(Reason.BAD_MAGIC,
                    String.format("first byte is 0x%02x, expected magic byte 0x00", payload[0] & 0xff), null);
        }
        int schemaId = ByteBuffer.wrap(payload, 1, 4).getInt();
        Writer writer = writer(schemaId);
        if (writer.error != null) {
            return fail(Reason.UNKNOWN_SCHEMA_ID, writer.error, schemaId);
        }
        if (writer.mismatch != null) {
            return fail(Reason.RESOLUTION_FAILED, "schema id " + schemaId + ": " + writer.mismatch, schemaId);
        }
        int bodyLength = payload.length - HEADER_SIZE;
        decoder.configure(payload, HEADER_SIZE, bodyLength);
        GenericRecord record;
        try {
            record = writer.resolving.read(writer.reuse, decoder);
            writer.reuse = record;
        } catch (AvroTypeException exc) {
            writer.reuse = null;
            // Like fastavro, a missing reader field is noticed only after the writer's fields were read:
            // a body that does not even decode with its own schema is CORRUPT_BODY.
            if (exc.getMessage() != null && MISSING_FIELD.matcher(exc.getMessage()).find()) {
                BoundedDecoder plain = new BoundedDecoder().configure(payload, HEADER_SIZE, bodyLength);
                try {
                    writer.plain().read(null, plain);
                } catch (Exception | StackOverflowError bodyExc) {
                    return corrupt(bodyExc, position(plain, bodyLength), schemaId);
                }
            }
            String why = writer.missingRequired != null ? writer.missingRequired : exc.getMessage();
            return fail(Reason.RESOLUTION_FAILED, "schema id " + schemaId + ": " + why, schemaId);
        } catch (Exception | StackOverflowError exc) { // EOF, malformed lengths, bad indexes, invalid UTF-8, ...
            writer.reuse = null;
            return corrupt(exc, position(decoder, bodyLength), schemaId);
        }
        int trailing = decoder.remaining();
        if (trailing > 0) {
            return fail(Reason.CORRUPT_BODY, trailing + " trailing bytes after the Avro record", schemaId);
        }
        Object[] row = new Object[ROW_ARITY];
        flatten(record, row);
        row[SCHEMA_ID_POS] = schemaId;
        String problem = invalid(row);
        if (problem != null) {
            return fail(Reason.INVALID_VALUE, problem, schemaId);
        }
        problem = ahead(row, nowMs, maxFutureMs);
        if (problem != null) {
            return fail(Reason.FUTURE_EVENT_TIME, problem, schemaId);
        }
        return row;
    }

    private Object[] corrupt(Throwable exc, int position, int schemaId) {
        String message = exc.getMessage() == null ? "" : exc.getMessage();
        return fail(Reason.CORRUPT_BODY,
                exc.getClass().getSimpleName() + " at body byte " + position + ": " + message, schemaId);
    }

    private static int position(BoundedDecoder in, int bodyLength) {
        return bodyLength - in.remaining();
    }

    private Writer writer(int schemaId) {
        Writer cached = writers.get(schemaId);
        if (cached != null) {
            return cached;
        }
        String text = lookup.apply(schemaId); // SchemaRegistryUnavailableException propagates on purpose
        Writer parsed;
        if (text == null) {
            parsed = new Writer("schema id " + schemaId + " is not registered", null, null);
        } else {
            try {
                Schema schema = new Schema.Parser().setValidateDefaults(false).parse(text);
                parsed = new Writer(null, schema, new StrictDatumReader(schema, readerSchema));
                parsed.missingRequired = missingRequired(schema, readerSchema);
                parsed.mismatch = nameMismatch(schema, readerSchema);
            } catch (RuntimeException | StackOverflowError exc) {
                parsed = new Writer("schema id " + schemaId + " is not a valid Avro schema: " + exc.getMessage(), null, null);
            }
        }
        Writer raced = writers.putIfAbsent(schemaId, parsed);
        return raced == null ? parsed : raced;
    }

    /**
     * Like fastavro (and the Avro spec), a writer record must have the reader's full name or one of its
     * aliases; Avro's Java resolver ignores the top-level name. Checked before reading, as fastavro does.
     */
    private static String nameMismatch(Schema writer, Schema reader) {
        if (writer.getType() == Schema.Type.RECORD
                && (writer.getFullName().equals(reader.getFullName()) || reader.getAliases().contains(writer.getFullName()))) {
            return null;
        }
        String name = writer.getType() == Schema.Type.RECORD ? writer.getFullName() : writer.getType().getName();
        return "Schema mismatch: writer " + name + " is not " + reader.getFullName();
    }

    /** fastavro's message for the first reader field the writer record lacks and that has no default. */
    private static String missingRequired(Schema writer, Schema reader) {
        if (writer.getType() != Schema.Type.RECORD) {
            return null;
        }
        for (Schema.Field field : reader.getFields()) {
            boolean inWriter = writer.getField(field.name()) != null;
            for (String alias : field.aliases()) {
                inWriter |= writer.getField(alias) != null;
            }
            if (!inWriter && !field.hasDefaultValue()) {
                return "No default value for field " + field.name() + " in " + reader.getFullName();
            }
        }
        return null;
    }

    /** How many writer ids are cached (found or not): for tests. */
    public int cachedIds() {
        return writers.size();
    }

    private void flatten(GenericRecord record, Object[] row) {
        for (int i = 0; i < paths.length; i++) {
            String[] path = paths[i];
            Object value = record.get(path[0]);
            for (int p = 1; p < path.length && value != null; p++) {
                value = value instanceof GenericRecord ? ((GenericRecord) value).get(path[p]) : null;
            }
            row[i] = plain(value);
        }
    }

    private static Object plain(Object value) {
        if (value == null || value instanceof String || value instanceof Long || value instanceof Integer
                || value instanceof Double) {
            return value;
        }
        if (value instanceof Float) {
            return ((Float) value).doubleValue();
        }
        return value.toString(); // enum symbols, Utf8
    }

    private String invalid(Object[] row) {
        for (int i = 0; i < isDouble.length; i++) {
            if (isDouble[i] && row[i] != null) {
                double value = (Double) row[i];
                if (!Double.isFinite(value)) {
                    return FLAT_FIELDS.get(i) + " is " + pythonFloat(value);
                }
            }
        }
        for (int i = 0; i < paths.length; i++) { // in field order, as the Python decoder checks them
            String name = FLAT_FIELDS.get(i);
            String problem = null;
            if (row[i] instanceof String) {
                problem = limits.stringProblem(name, (String) row[i]);
            } else if (row[i] instanceof Double || row[i] instanceof Integer || row[i] instanceof Long) {
                problem = limits.rangeProblem(name, ((Number) row[i]).doubleValue());
            }
            if (problem != null) {
                return problem;
            }
        }
        return null;
    }

    private String ahead(Object[] row, long nowMs, long maxFutureMs) {
        Object eventTime = row[eventTimePos];
        if (eventTime instanceof Long) {
            long et = (Long) eventTime;
            BigInteger ahead = BigInteger.valueOf(et).subtract(BigInteger.valueOf(nowMs));
            if (ahead.compareTo(BigInteger.valueOf(maxFutureMs)) > 0) {
                return eventTimeField + " " + et + " is " + ahead + " ms after the reference time " + nowMs
                        + " (bound " + maxFutureMs + " ms)";
            }
        }
        return null;
    }

    private static String pythonFloat(double value) {
        if (Double.isNaN(value)) {
            return "nan";
        }
        return value > 0 ? "inf" : "-inf";
    }

    private static Object[] fail(Reason reason, String error, Integer schemaId) {
        Object[] row = new Object[ROW_ARITY];
        row[SCHEMA_ID_POS] = schemaId;
        row[REASON_POS] = reason.name();
        row[ERROR_POS] = error.length() > MAX_ERROR_CHARS ? error.substring(0, MAX_ERROR_CHARS) : error;
        return row;
    }

    /** A cached writer schema id: either an error text (unknown id) or a resolving reader. */
    private static final class Writer {
        final String error;
        final Schema schema;
        final StrictDatumReader resolving;
        StrictDatumReader plain;
        String missingRequired;
        String mismatch;
        GenericRecord reuse;

        Writer(String error, Schema schema, StrictDatumReader resolving) {
            this.error = error;
            this.schema = schema;
            this.resolving = resolving;
        }

        StrictDatumReader plain() {
            if (plain == null) {
                plain = new StrictDatumReader(schema, schema);
            }
            return plain;
        }
    }

    /**
     * A GenericDatumReader that rejects invalid UTF-8 in strings (Avro's own reader replaces it silently;
     * fastavro raises UnicodeDecodeError, which the Python decoder reports as CORRUPT_BODY).
     */
    static final class StrictDatumReader extends GenericDatumReader<GenericRecord> {
        private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        private Utf8 scratch = new Utf8();

        StrictDatumReader(Schema writer, Schema reader) {
            super(writer, reader);
        }

        @Override
        protected Object readString(Object old, Decoder in) throws IOException {
            scratch = in.readString(scratch);
            byte[] bytes = scratch.getBytes();
            int length = scratch.getByteLength();
            for (int i = 0; i < length; i++) {
                if (bytes[i] < 0) {
                    return strict(bytes, length);
                }
            }
            return new String(bytes, 0, length, StandardCharsets.ISO_8859_1); // pure ASCII
        }

        private String strict(byte[] bytes, int length) throws CharacterCodingException {
            return utf8.reset().decode(ByteBuffer.wrap(bytes, 0, length)).toString();
        }
    }

    static String[] fieldNames() {
        return FLAT_FIELDS.toArray(new String[0]);
    }

    @Override
    public String toString() {
        return "TelemetryDecoder(maxFutureMs=" + maxFutureMs + ", cached ids=" + Arrays.toString(writers.keySet().toArray()) + ")";
    }
}
