"""The local stack: real Kafka, PostgreSQL, object storage, schema registry and a Flink cluster."""
