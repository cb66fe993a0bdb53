"""Keyed process functions of the alerting job written in Java (udfs/java), wired between SQL views.

The silence detector (io.kappa.udfs.DeviceSilence) and the cool-down (io.kappa.udfs.AlertCooldown) are
Java because every PyFlink operator hands its records to a Python worker in bundles: the silence
detector, which sees every on-time reading, saturated its worker at about 300 readings/s. Each Java side
is a static method `(DataStream<Row>, int[] positions) -> DataStream<Row>`; the positions say where it
finds the columns it reads, so a view may add columns without breaking it.

No pyflink import at module level, like the other udfs modules.
"""

from __future__ import annotations

from typing import Any


def positions(field_names: list[str], wanted: tuple[str, ...]) -> list[int]:
    """Where a Java function finds each of `wanted` in a row with `field_names`."""
    missing = [name for name in wanted if name not in field_names]
    if missing:
        raise ValueError(f"no column {', '.join(missing)} in {field_names}")
    return [field_names.index(name) for name in wanted]


def java_keyed(t_env: Any, view: str, method: str, wanted: tuple[str, ...]) -> Any:
    """The Table that the static Java method io.kappa.udfs.<Class.method> makes of the rows of `view`,
    given the positions of the columns `wanted`. The class is loaded through the context class loader,
    which holds the job's jars (pipeline.jars), as the SQL functions are."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    table = t_env.from_path(view)
    found = positions(table.get_schema().get_field_names(), wanted)
    gateway = get_gateway()
    columns = gateway.new_array(gateway.jvm.int, len(found))
    for index, position in enumerate(found):
        columns[index] = position
    class_name, method_name = method.split(".")
    function = getattr(getattr(gateway.jvm.io.kappa.udfs, class_name), method_name)
    rows = t_env.to_data_stream(table)
    return t_env.from_data_stream(DataStream(function(rows._j_data_stream, columns)))
