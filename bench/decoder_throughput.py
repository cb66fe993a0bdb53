"""The Python Avro decoder's cost over plain fastavro, same bytes, same run.

Payloads are the simulator's (v1 and v2 writers, Confluent framing) without Kafka. The decoder
(`udfs.avro_decoder.decode_batch`: framing checks, schema lookup by id, resolution to the v2 reader,
validation, flat rows, dead-letter columns) is timed against a loop of `fastavro.schemaless_reader`
with the same writer->reader resolution over the same bodies. Prints both rates and the overhead.

    .venv/bin/python bench/decoder_throughput.py [--records 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import fastavro
import pandas as pd

from kappa.config import get_config
from kappa.simulate import SimulationSpec, simulate
from udfs.avro_decoder import AvroDecoder, decode_batch, load_reader_schema
from udfs.schema_lookup import DictSchemaLookup

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "avro" / "telemetry"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    devices = 100
    spec = SimulationSpec(devices=devices, readings_per_device=args.records // devices, seed=1, anomalies=False,
                          v1_fraction=0.3)
    manifest = simulate(get_config(), spec, produce=False, log=lambda _: None)
    payloads = [r.value for r in manifest.records]
    ids = manifest.data["schema_ids"]
    texts = {ids["v1"]: (SCHEMAS / "v1.avsc").read_text(), ids["v2"]: (SCHEMAS / "v2.avsc").read_text()}
    now_ms = max(r.event_time for r in manifest.records) + 1
    series = pd.Series(payloads, dtype=object)

    reader = fastavro.parse_schema(load_reader_schema())
    writers = {sid: fastavro.parse_schema(json.loads(text)) for sid, text in texts.items()}

    def plain() -> int:
        count = 0
        for payload in payloads:
            writer = writers[int.from_bytes(payload[1:5], "big")]
            fastavro.schemaless_reader(io.BytesIO(payload[5:]), writer, reader)
            count += 1
        return count

    def ours() -> int:
        decoder = AvroDecoder(DictSchemaLookup(texts))
        frame = decode_batch(series, decoder, now_ms=now_ms)
        assert frame["dlq_reason"].isna().all(), "benchmark input must decode cleanly"
        return len(frame)

    best = {}
    for _ in range(args.repeats):
        for name, run in (("fastavro", plain), ("decoder", ours)):
            started = time.perf_counter()
            count = run()
            elapsed = time.perf_counter() - started
            best[name] = min(best.get(name, elapsed), elapsed)
            print(f"  {name:<9} {count} records in {elapsed:.2f} s", flush=True)
    plain_rate, our_rate = len(payloads) / best["fastavro"], len(payloads) / best["decoder"]
    print(f"plain fastavro schemaless_reader : {plain_rate:>10,.0f} records/s")
    print(f"udfs.avro_decoder.decode_batch   : {our_rate:>10,.0f} records/s")
    print(f"decoder cost over plain fastavro : {best['decoder'] / best['fastavro'] - 1:+.0%}  (goal: under +25%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
