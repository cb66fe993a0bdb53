"""Flink jobs. Each module declares its `PIPELINE` (kappa.pipeline: source and sinks; the logic between them
resolved from the SQL headers) and a `build(ctx)` that runs it and returns a StatementSet."""
