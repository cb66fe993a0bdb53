package io.kappa.udfs;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code BYTE_LENGTH(bytes)}: the length of a BYTES value (Flink SQL has no OCTET_LENGTH for binary), null
 * for null. sql/telemetry/decode.sql drops a dead letter's key over max_key_bytes with it.
 */
public class ByteLength extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    public Integer eval(byte[] value) {
        return value == null ? null : value.length;
    }
}
