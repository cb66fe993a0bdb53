package io.kappa.udfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * What a telemetry record may hold: schemas/avro/telemetry/limits.json, copied into the jar at build time,
 * the same file the Python decoder (udfs/limits.py) reads. Messages name the field, never its value, and
 * are the Python twin's texts word for word.
 */
final class Limits {
    static final String RESOURCE = "limits.json";

    final int maxRecordBytes;
    private final Map<String, boolean[]> required = new HashMap<>();
    private final Map<String, Integer> maxChars = new HashMap<>();
    private final Map<String, double[]> ranges = new HashMap<>();

    private Limits(JsonNode json) {
        this.maxRecordBytes = json.get("max_record_bytes").asInt();
        for (Iterator<Map.Entry<String, JsonNode>> it = json.get("strings").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            required.put(entry.getKey(), new boolean[] {entry.getValue().get("required").asBoolean()});
            maxChars.put(entry.getKey(), entry.getValue().get("max_chars").asInt());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = json.get("ranges").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            ranges.put(entry.getKey(), new double[] {entry.getValue().get(0).asDouble(), entry.getValue().get(1).asDouble()});
        }
    }

    static Limits load() {
        try (InputStream in = Limits.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource " + RESOURCE + " missing from the jar");
            }
            return new Limits(new ObjectMapper().readTree(in));
        } catch (IOException exc) {
            throw new UncheckedIOException(exc);
        }
    }

    /** Why a string field is unusable (NUL byte, empty id, too long), or null. */
    String stringProblem(String name, String value) {
        if (value.indexOf('\0') >= 0) {
            return name + " contains a NUL byte";
        }
        Integer max = maxChars.get(name);
        if (max == null) {
            return null;
        }
        if (required.get(name)[0] && value.isEmpty()) {
            return name + " is empty";
        }
        int chars = value.codePointCount(0, value.length());
        if (chars > max) {
            return name + " is " + chars + " characters long (limit " + max + ")";
        }
        return null;
    }

    /** Why a number is outside its declared range, or null. */
    String rangeProblem(String name, double value) {
        double[] bounds = ranges.get(name);
        if (bounds == null || (bounds[0] <= value && value <= bounds[1])) {
            return null;
        }
        return name + " is outside its range in limits.json";
    }
}
