package io.kappa.udfs;

import org.apache.flink.table.functions.FunctionContext;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * The barrier of the golden SQL fixtures (kappa/sqltest_runner.py): every fixture's telemetry waits
 * until every versioned reference table of the job has been read to its end.
 *
 * <p>Why: an event-time temporal join holds each reading until the reference side's watermark, which
 * a bounded reference source releases only at its end. Were the telemetry read first, the join would
 * release all of it at once, and a window would see a reading that arrived after the watermark passed
 * it (an allowed-lateness update) in the same batch as the others: the changelog would depend on which
 * source task the machine scheduled first. Two independent sources cannot be ordered in Flink SQL, so
 * the harness orders them: {@link SqltestReferenceRead} marks a reference source done when its
 * operator closes (after its final watermark went downstream), and {@link SqltestAwaitReferences}
 * holds the first telemetry row until as many marks as the runner counted in the job's plan exist.
 *
 * <p>The folder comes from the job parameter {@value #FOLDER}; the number of reference sources from
 * the file {@value #EXPECTED} in it (written by the runner, from the tables each fixture's query reads,
 * before the job runs).
 */
final class SqltestBarrier {
    static final String FOLDER = "kappa.sqltest.barrier";
    static final String TIMEOUT = "kappa.sqltest.barrier.timeout-ms";
    static final String EXPECTED = "expected";
    static final String DONE = ".done";
    private static final long POLL_MS = 20L;

    private SqltestBarrier() {}

    static Path folder(FunctionContext context) {
        String folder = context.getJobParameter(FOLDER, null);
        if (folder == null) {
            throw new IllegalStateException("job parameter " + FOLDER + " is not set (only the SQL fixture runner uses this function)");
        }
        return Paths.get(folder);
    }

    static void markDone(Path folder) throws IOException {
        Path mark = folder.resolve(UUID.randomUUID() + DONE + ".tmp");
        Files.write(mark, new byte[0]);
        Files.move(mark, folder.resolve(mark.getFileName().toString().replace(".tmp", "")));
    }

    /** Blocks until the folder holds as many marks as its file {@value #EXPECTED} says, or throws. */
    static void await(Path folder, long timeoutMs) throws IOException, InterruptedException {
        long expected = Long.parseLong(new String(Files.readAllBytes(folder.resolve(EXPECTED)), StandardCharsets.UTF_8).trim());
        long deadline = System.currentTimeMillis() + timeoutMs;
        long done;
        while ((done = doneCount(folder)) < expected) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("SQL fixtures: " + done + " of " + expected
                        + " reference sources ended within " + timeoutMs + " ms; the telemetry cannot start");
            }
            Thread.sleep(POLL_MS);
        }
    }

    static long doneCount(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.filter(p -> p.getFileName().toString().endsWith(DONE)).count();
        }
    }
}
