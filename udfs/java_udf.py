"""The JVM twin of `udfs.avro_decoder`: the Java scalar function built from udfs/java (kappa-udfs jar).

Decoding in the JVM costs about half of a Python UDF. `io.kappa.udfs.DecodeTelemetry` takes
`(payload BYTES, registry_url STRING[, now_ms BIGINT])` and returns the ROW of `avro_decoder.BATCH_FIELDS`
(FLAT_FIELDS + dlq_reason + dlq_error) with the same reason codes and decisions as the Python decoder; a
record that cannot be decoded gets dlq_reason/dlq_error and null measurements (schema_id when known),
and an unreachable registry fails the job. The jar must be on `pipeline.jars`: build it with
`mvn -q -B -f udfs/java/pom.xml package` (it lands in .kappa/jars/flink/kappa-udfs-<version>.jar).

No pyflink import at module level, like avro_decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from udfs.avro_decoder import BATCH_FIELDS

JAVA_DECODER_CLASS = "io.kappa.udfs.DecodeTelemetry"
JAR_ARTIFACT = "kappa-udfs"
# Job parameter (pipeline.global-job-parameters) read by the no-arg constructor in open().
MAX_FUTURE_PARAM = "kappa.decoder.max-future-ms"
# The SQL type the function returns, from the Python field list (the Java side declares the same).
ROW_TYPE = "ROW<" + ", ".join(f"{name} {type_name}" for name, type_name in BATCH_FIELDS) + ">"


def register_java_decoder(t_env: Any, name: str = "decode_telemetry") -> None:
    """CREATE TEMPORARY SYSTEM FUNCTION `name` for the Java decoder (the jar must be on pipeline.jars)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    t_env.execute_sql(f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{JAVA_DECODER_CLASS}' LANGUAGE JAVA")


def find_java_udf_jar(jars_dir: Path | str) -> Path | None:
    """The newest kappa-udfs-<version>.jar in `jars_dir` (e.g. config.jars_dir / "flink"), or None."""
    jars = sorted(Path(jars_dir).glob(f"{JAR_ARTIFACT}-[0-9]*.jar"))
    return jars[-1] if jars else None
