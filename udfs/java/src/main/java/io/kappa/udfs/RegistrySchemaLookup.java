package io.kappa.udfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.function.IntFunction;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * {@code GET {url}/schemas/ids/{id}} against a Confluent-compatible registry; the Java twin of Python's
 * {@code RegistrySchemaLookup}. Returns the schema text, {@code null} when the id is not registered (404)
 * or is not an Avro schema, and throws {@link SchemaRegistryUnavailableException} for anything else.
 * Caching is the decoder's job (it caches parsed writers and misses per id).
 *
 * <p>Basic auth (always on for the project's registry): the JVM system properties {@code kappa.registry.user}
 * and {@code kappa.registry.password} (set through the gateway for a local MiniCluster, kappa.flinkenv), else
 * the environment variables {@code KAPPA_REGISTRY_USER} and {@code KAPPA_REGISTRY_PASSWORD} (the stack's
 * TaskManager gets them at start). Neither is in any argv, SQL text or job parameter, so no Flink REST
 * reply or log shows them; error texts name the URL only.
 *
 * <p>TLS (the project's registry is HTTPS only): the certificate is verified, host name included, against the
 * PEM CA file named by the system property {@code kappa.registry.ca_file}, else the environment variable
 * {@code KAPPA_REGISTRY__CA_FILE} (the config's own registry.ca_file variable), the same two places as the
 * credentials; with neither, against the JVM's default trust store.
 */
public final class RegistrySchemaLookup implements IntFunction<String> {
    public static final String USER_ENV = "KAPPA_REGISTRY_USER";
    public static final String PASSWORD_ENV = "KAPPA_REGISTRY_PASSWORD";
    public static final String USER_PROPERTY = "kappa.registry.user";
    public static final String PASSWORD_PROPERTY = "kappa.registry.password";
    public static final String CA_FILE_ENV = "KAPPA_REGISTRY__CA_FILE";
    public static final String CA_FILE_PROPERTY = "kappa.registry.ca_file";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String url;
    private final HttpClient client;
    private final Duration timeout;
    private final String authorization;

    public RegistrySchemaLookup(String url, Duration timeout, Map<String, String> env) {
        this.url = stripTrailingSlashes(url);
        this.timeout = timeout;
        HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(timeout);
        String caFile = System.getProperty(CA_FILE_PROPERTY, env.get(CA_FILE_ENV));
        if (caFile != null && !caFile.isEmpty()) {
            builder.sslContext(trusting(Path.of(caFile)));
        }
        this.client = builder.build();
        String user = System.getProperty(USER_PROPERTY, env.get(USER_ENV));
        String password = System.getProperty(PASSWORD_PROPERTY, env.get(PASSWORD_ENV));
        this.authorization = user != null && password != null && !user.isEmpty()
                ? "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8))
                : null;
    }

    public RegistrySchemaLookup(String url) {
        this(url, Duration.ofSeconds(10), System.getenv());
    }

    public String url() {
        return url;
    }

    /** A TLS context trusting exactly the certificates of a PEM file; an unusable file fails the job. */
    static SSLContext trusting(Path caFile) {
        try (InputStream in = Files.newInputStream(caFile)) {
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int count = 0;
            for (Certificate certificate : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                store.setCertificateEntry("ca-" + count++, certificate);
            }
            if (count == 0) {
                throw new GeneralSecurityException("no certificate in it");
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (IOException | GeneralSecurityException exc) {
            throw new SchemaRegistryUnavailableException("schema registry CA file " + caFile + " is unusable: " + exc, exc);
        }
    }

    private static String stripTrailingSlashes(String url) {
        String out = url;
        while (out.endsWith("/")) {
            out = out.substring(0, out.length() - 1);
        }
        return out;
    }

    @Override
    public String apply(int schemaId) {
        HttpResponse<String> response;
        try {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + "/schemas/ids/" + schemaId))
                    .timeout(timeout)
                    .header("Accept", "application/vnd.schemaregistry.v1+json, application/json")
                    .GET();
            if (authorization != null) {
                request.header("Authorization", authorization);
            }
            response = client.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (InterruptedException exc) {
            Thread.currentThread().interrupt();
            throw new SchemaRegistryUnavailableException("schema registry " + url + " unreachable: interrupted", exc);
        } catch (IOException | RuntimeException exc) {
            throw new SchemaRegistryUnavailableException("schema registry " + url + " unreachable: " + exc, exc);
        }
        int status = response.statusCode();
        if (status == 404) {
            return null;
        }
        String body = response.body() == null ? "" : response.body();
        if (status != 200) {
            throw new SchemaRegistryUnavailableException("schema registry " + url + " answered " + status + " for id "
                    + schemaId + ": " + body.substring(0, Math.min(200, body.length())));
        }
        JsonNode schema;
        JsonNode schemaType;
        try {
            JsonNode json = JSON.readTree(body);
            schema = json == null || !json.isObject() ? null : json.get("schema");
            schemaType = schema == null ? null : json.get("schemaType");
        } catch (IOException exc) {
            schema = null;
            schemaType = null;
        }
        if (schema == null || schema.isNull()) {
            throw new SchemaRegistryUnavailableException(
                    "schema registry " + url + ": bad response for id " + schemaId);
        }
        if (schemaType != null && !schemaType.isNull() && !"AVRO".equals(schemaType.asText())) {
            return null; // a Protobuf/JSON schema id cannot be a telemetry writer schema
        }
        return schema.isTextual() ? schema.asText() : schema.toString();
    }
}
