package io.kappa.udfs;

import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

import java.nio.file.Path;

/**
 * {@code SQLTEST_AWAIT_REFERENCES()}: TRUE for every row; the first call blocks until every
 * reference source of the job is marked done by {@link SqltestReferenceRead} (see
 * {@link SqltestBarrier}), or fails the job with a clear error after the job parameter
 * {@value SqltestBarrier#TIMEOUT} (milliseconds, default {@value #DEFAULT_TIMEOUT_MS}). Golden SQL
 * fixtures only: the runner filters a fixture's telemetry through it.
 */
public class SqltestAwaitReferences extends ScalarFunction {
    private static final long serialVersionUID = 1L;
    static final long DEFAULT_TIMEOUT_MS = 180_000L;

    private transient Path folder;
    private transient boolean open;
    private transient long timeoutMs;

    @Override
    public void open(FunctionContext context) {
        folder = SqltestBarrier.folder(context);
        timeoutMs = Long.parseLong(context.getJobParameter(SqltestBarrier.TIMEOUT, String.valueOf(DEFAULT_TIMEOUT_MS)));
        open = false;
    }

    public Boolean eval() throws Exception {
        if (!open) {
            SqltestBarrier.await(folder, timeoutMs);
            open = true;
        }
        return Boolean.TRUE;
    }

    @Override
    public boolean isDeterministic() {
        return false; // it blocks: the planner must neither fold nor drop it
    }
}
