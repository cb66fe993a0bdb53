package io.kappa.udfs;

import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

import java.nio.file.Path;

/**
 * {@code SQLTEST_REFERENCE_READ(value)}: its BIGINT argument, unchanged; when its operator closes (the
 * reference source has ended and its final watermark has gone downstream), it marks one reference
 * source done for {@link SqltestAwaitReferences}. Golden SQL fixtures only (see {@link SqltestBarrier}):
 * the runner computes a fixture's versioned table's event time through it (the temporal join always
 * reads that column; an unused one would be pruned, and a filter on the versioned side of the join is
 * refused).
 */
public class SqltestReferenceRead extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    private transient Path folder;

    @Override
    public void open(FunctionContext context) {
        folder = SqltestBarrier.folder(context);
    }

    public Long eval(Long value) {
        return value;
    }

    @Override
    public void close() throws Exception {
        if (folder != null) {
            SqltestBarrier.markDone(folder);
        }
    }

    @Override
    public boolean isDeterministic() {
        return false; // called for its close(); the planner must neither fold nor drop it
    }
}
