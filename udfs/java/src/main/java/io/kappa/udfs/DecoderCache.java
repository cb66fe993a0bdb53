package io.kappa.udfs;

import java.io.Serializable;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** One {@link TelemetryDecoder} (schema lookup + writer cache) per registry URL, built on first use. */
final class DecoderCache implements Serializable {
    private static final long serialVersionUID = 1L;

    private final long defaultMaxFutureMs;
    private transient Map<String, TelemetryDecoder> decoders;

    DecoderCache() {
        this(TelemetryDecoder.DAY_MS);
    }

    DecoderCache(long defaultMaxFutureMs) {
        this.defaultMaxFutureMs = defaultMaxFutureMs;
    }

    TelemetryDecoder get(String registryUrl) {
        if (registryUrl == null) {
            throw new IllegalArgumentException("the schema registry URL is null");
        }
        if (decoders == null) {
            decoders = new ConcurrentHashMap<>();
        }
        TelemetryDecoder decoder = decoders.get(registryUrl);
        if (decoder == null) {
            decoder = decoders.computeIfAbsent(registryUrl,
                    url -> new TelemetryDecoder(new RegistrySchemaLookup(url), defaultMaxFutureMs));
        }
        return decoder;
    }

    void clear() {
        decoders = null;
    }
}
