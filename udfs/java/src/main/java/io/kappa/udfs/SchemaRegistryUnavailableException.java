package io.kappa.udfs;

/**
 * The schema registry could not answer (network error, non-404 error status, bad response). This is an
 * outage, not bad data: it propagates out of the UDF so the job fails and restarts from its checkpoint
 * instead of dead-lettering good records. Mirrors Python's {@code udfs.schema_lookup.SchemaRegistryUnavailable}.
 */
public class SchemaRegistryUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public SchemaRegistryUnavailableException(String message) {
        super(message);
    }

    public SchemaRegistryUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
