"""Observability: the project's Prometheus exporter and the metric names it serves."""
