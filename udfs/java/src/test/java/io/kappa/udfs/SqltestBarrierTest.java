package io.kappa.udfs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SqltestBarrierTest {

    @Test
    void theBarrierOpensOnlyOnceEveryExpectedSourceIsMarked(@TempDir Path folder) throws Exception {
        Files.writeString(folder.resolve(SqltestBarrier.EXPECTED), "2\n");
        SqltestBarrier.markDone(folder);
        CompletableFuture<Long> waiter = CompletableFuture.supplyAsync(() -> {
            try {
                SqltestBarrier.await(folder, 60_000);
                return SqltestBarrier.doneCount(folder); // what the barrier saw when it opened
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        Thread.sleep(200); // one mark of two: the waiter must still be waiting
        assertFalse(waiter.isDone());
        SqltestBarrier.markDone(folder);
        assertEquals(2L, waiter.get(60, TimeUnit.SECONDS));
        try (var files = Files.list(folder)) {
            assertTrue(files.noneMatch(p -> p.toString().endsWith(".tmp")), "a mark is written whole, then renamed");
        }
    }

    @Test
    void aSourceThatNeverEndsFailsTheWaitWithTheCount(@TempDir Path folder) throws Exception {
        Files.writeString(folder.resolve(SqltestBarrier.EXPECTED), "3");
        SqltestBarrier.markDone(folder);
        IllegalStateException error = assertThrows(IllegalStateException.class, () -> SqltestBarrier.await(folder, 100));
        assertTrue(error.getMessage().contains("1 of 3 reference sources ended within 100 ms"), error.getMessage());
    }
}
