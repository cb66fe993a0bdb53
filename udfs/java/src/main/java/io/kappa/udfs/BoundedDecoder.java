package io.kappa.udfs;

import org.apache.avro.AvroRuntimeException;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.Decoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.util.Utf8;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A {@link BinaryDecoder} over one in-memory payload that checks every length prefix against the bytes
 * left before allocating. Avro's decoder allocates first (up to ~2 GB for a garbage string length) and only
 * then notices the end of input, which would turn one corrupt record into an OutOfMemoryError of the task.
 * Block counts of arrays/maps are bounded the same way (an item takes at least one byte unless it is null).
 */
final class BoundedDecoder extends Decoder {
    /** Largest array/map block accepted beyond the bytes left (for zero-byte null items). */
    static final long MAX_EMPTY_ITEMS = 65_536;

    private BinaryDecoder in;

    BoundedDecoder configure(byte[] data, int offset, int length) {
        in = DecoderFactory.get().binaryDecoder(data, offset, length, in);
        return this;
    }

    int remaining() {
        try {
            return in.inputStream().available();
        } catch (IOException exc) {
            return 0;
        }
    }

    boolean isEnd() throws IOException {
        return in.isEnd();
    }

    private int length() throws IOException {
        long length = in.readLong();
        if (length < 0) {
            throw new AvroRuntimeException("Malformed data. Length is negative: " + length);
        }
        int left = remaining();
        if (length > left) {
            throw new EOFException("length " + length + " exceeds the " + left + " bytes left");
        }
        return (int) length;
    }

    private long count(long count) {
        long items = Math.abs(count);
        if (count == Long.MIN_VALUE || items > remaining() + MAX_EMPTY_ITEMS) {
            throw new AvroRuntimeException("Malformed data. Block count " + count + " exceeds the bytes left");
        }
        return count;
    }

    @Override
    public void readNull() throws IOException {
        in.readNull();
    }

    @Override
    public boolean readBoolean() throws IOException {
        return in.readBoolean();
    }

    @Override
    public int readInt() throws IOException {
        return in.readInt();
    }

    @Override
    public long readLong() throws IOException {
        return in.readLong();
    }

    @Override
    public float readFloat() throws IOException {
        return in.readFloat();
    }

    @Override
    public double readDouble() throws IOException {
        return in.readDouble();
    }

    @Override
    public Utf8 readString(Utf8 old) throws IOException {
        int length = length();
        Utf8 result = old != null ? old : new Utf8();
        result.setByteLength(length);
        if (length > 0) {
            in.readFixed(result.getBytes(), 0, length);
        }
        return result;
    }

    @Override
    public String readString() throws IOException {
        int length = length();
        byte[] bytes = new byte[length];
        in.readFixed(bytes, 0, length);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    @Override
    public void skipString() throws IOException {
        in.skipFixed(length());
    }

    @Override
    public ByteBuffer readBytes(ByteBuffer old) throws IOException {
        int length = length();
        ByteBuffer result;
        if (old != null && length <= old.capacity()) {
            result = old;
            result.clear();
        } else {
            result = ByteBuffer.allocate(length);
        }
        in.readFixed(result.array(), result.position(), length);
        result.limit(length);
        return result;
    }

    @Override
    public void skipBytes() throws IOException {
        in.skipFixed(length());
    }

    @Override
    public void readFixed(byte[] bytes, int start, int length) throws IOException {
        in.readFixed(bytes, start, length);
    }

    @Override
    public void skipFixed(int length) throws IOException {
        in.skipFixed(length);
    }

    @Override
    public int readEnum() throws IOException {
        return in.readEnum();
    }

    @Override
    public long readArrayStart() throws IOException {
        return count(in.readArrayStart());
    }

    @Override
    public long arrayNext() throws IOException {
        return count(in.arrayNext());
    }

    @Override
    public long skipArray() throws IOException {
        return count(in.skipArray());
    }

    @Override
    public long readMapStart() throws IOException {
        return count(in.readMapStart());
    }

    @Override
    public long mapNext() throws IOException {
        return count(in.mapNext());
    }

    @Override
    public long skipMap() throws IOException {
        return count(in.skipMap());
    }

    @Override
    public int readIndex() throws IOException {
        return in.readIndex();
    }
}
