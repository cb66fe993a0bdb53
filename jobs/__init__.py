"""Flink jobs. Each module's `build(ctx)` declares sources, logic and sinks and returns a StatementSet."""
