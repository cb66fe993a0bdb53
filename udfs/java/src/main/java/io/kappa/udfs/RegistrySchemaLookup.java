package io.kappa.udfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.function.IntFunction;

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
 */
public final class RegistrySchemaLookup implements IntFunction<String> {
    public static final String USER_ENV = "KAPPA_REGISTRY_USER";
    public static final String PASSWORD_ENV = "KAPPA_REGISTRY_PASSWORD";
    public static final String USER_PROPERTY = "kappa.registry.user";
    public static final String PASSWORD_PROPERTY = "kappa.registry.password";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String url;
    private final HttpClient client;
    private final Duration timeout;
    private final String authorization;

    public RegistrySchemaLookup(String url, Duration timeout, Map<String, String> env) {
        this.url = stripTrailingSlashes(url);
        this.timeout = timeout;
        this.client = HttpClient.newBuilder().connectTimeout(timeout).build();
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
