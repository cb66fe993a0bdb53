package io.kappa.udfs;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lookup over HTTPS: it trusts exactly the CA file it is given, checks the host name, and an unusable
 * CA file fails loudly. The certificates are made by the JDK's own keytool (self-signed, each its own CA).
 */
class RegistrySchemaLookupTlsTest {
    private static final String SCHEMA = "{\"type\":\"string\"}";
    private static final char[] PASSWORD = "test-only".toCharArray();

    @TempDir
    Path dir;
    HttpsServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.stop(0);
        }
    }

    /** A self-signed key pair for {@code san} in a PKCS12 store, and its certificate as PEM. */
    private Path[] keyPair(String alias, String san) throws Exception {
        Path store = dir.resolve(alias + ".p12");
        Path pem = dir.resolve(alias + ".pem");
        String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
        String pass = new String(PASSWORD);
        run(List.of(keytool, "-genkeypair", "-alias", alias, "-keyalg", "EC", "-groupname", "secp256r1",
                "-dname", "CN=" + alias, "-ext", "san=" + san, "-validity", "2", "-storetype", "PKCS12",
                "-keystore", store.toString(), "-storepass", pass, "-keypass", pass));
        run(List.of(keytool, "-exportcert", "-rfc", "-alias", alias, "-keystore", store.toString(),
                "-storepass", pass, "-file", pem.toString()));
        return new Path[] {store, pem};
    }

    private static void run(List<String> command) throws Exception {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS) && process.exitValue() == 0, output);
    }

    private String serve(Path keyStore) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keyStore)) {
            store.load(in, PASSWORD);
        }
        KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(store, PASSWORD);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys.getKeyManagers(), null, null);
        server = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(context));
        server.createContext("/schemas/ids/", exchange -> {
            byte[] body = ("{\"schema\":" + "\"" + SCHEMA.replace("\"", "\\\"") + "\"}").getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        return "https://127.0.0.1:" + server.getAddress().getPort();
    }

    private static RegistrySchemaLookup lookup(String url, Path ca) {
        return new RegistrySchemaLookup(url, Duration.ofSeconds(5), Map.of(RegistrySchemaLookup.CA_FILE_ENV, ca.toString()));
    }

    @Test
    void trustsTheConfiguredCaOnly() throws Exception {
        Path[] registry = keyPair("registry", "ip:127.0.0.1");
        Path[] foreign = keyPair("foreign", "ip:127.0.0.1");
        String url = serve(registry[0]);
        assertEquals(SCHEMA, lookup(url, registry[1]).apply(1));
        SchemaRegistryUnavailableException refused = assertThrows(SchemaRegistryUnavailableException.class,
                () -> lookup(url, foreign[1]).apply(1));
        assertTrue(refused.getMessage().contains("unreachable"), refused.getMessage());
        // the JVM's default trust store (no CA file configured) does not know the stack's CA either
        assertThrows(SchemaRegistryUnavailableException.class,
                () -> new RegistrySchemaLookup(url, Duration.ofSeconds(5), Map.of()).apply(1));
    }

    @Test
    void checksTheHostName() throws Exception {
        Path[] elsewhere = keyPair("elsewhere", "dns:registry.example");
        String url = serve(elsewhere[0]);
        assertThrows(SchemaRegistryUnavailableException.class, () -> lookup(url, elsewhere[1]).apply(1));
    }

    @Test
    void anUnusableCaFileFails() throws Exception {
        Path empty = Files.writeString(dir.resolve("empty.pem"), "");
        for (Path ca : new Path[] {dir.resolve("missing.pem"), empty}) {
            SchemaRegistryUnavailableException exc = assertThrows(SchemaRegistryUnavailableException.class,
                    () -> lookup("https://127.0.0.1:1", ca));
            assertTrue(exc.getMessage().contains("CA file"), exc.getMessage());
        }
    }
}
