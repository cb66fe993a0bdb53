"""`kappa simulate`: its arguments, the spec they make, and the summary line."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from kappa.config import Config
from kappa.simulate import model
from kappa.simulate.model import DEFAULT_START, VIA, SimulationSpec, parse_time_ms
from kappa.simulate.produce import simulate


def _duration_s(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def add_parser(subparsers: Any) -> None:
    """Register `kappa simulate`."""
    p = subparsers.add_parser(
        "simulate",
        help="produce deterministic simulated telemetry (with anomalies and faults) to Kafka",
        description=model.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = SimulationSpec()
    p.add_argument("--devices", type=int, default=d.devices)
    p.add_argument("--sites", type=int, default=d.sites)
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--readings-per-device", type=int, default=None, help=f"default {d.readings_per_device}"
    )
    size.add_argument("--duration", help="simulated time span, e.g. 30m, 2h (sets readings per device)")
    p.add_argument("--interval-s", type=float, default=d.interval_s)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--start", default=DEFAULT_START, help="event time of the first reading (ISO 8601, UTC)")
    p.add_argument("--topic", default=None, help="default: kafka.telemetry_topic")
    p.add_argument("--no-anomalies", action="store_true", help="do not plant anomalies")
    p.add_argument("--overheat-run", type=int, default=d.overheat_run)
    p.add_argument("--out-of-order", type=float, default=0.0, metavar="FRACTION")
    p.add_argument("--out-of-order-max-s", type=float, default=None, help="default: the watermark delay")
    p.add_argument("--late", type=float, default=0.0, metavar="FRACTION")
    p.add_argument("--late-margin-s", type=float, default=d.late_margin_s)
    p.add_argument("--duplicates", type=float, default=0.0, metavar="FRACTION")
    p.add_argument("--malformed", type=int, default=0, metavar="N", help="N records of each malformed kind")
    p.add_argument(
        "--v1-fraction", type=float, default=0.0, help="fraction of readings written with schema v1"
    )
    p.add_argument("--no-auto-register", action="store_true", help="schemas must already be registered")
    p.add_argument("--transactional-id", default=None, help="produce in Kafka transactions")
    p.add_argument("--progress-every", type=int, default=d.progress_every)
    p.add_argument("--rate", type=float, default=None, metavar="RECORDS_PER_S",
                   help="produce at this steady rate (default: as fast as the broker takes them)")
    p.add_argument("--via", choices=VIA, default=d.via,
                   help="kafka: produce to the topic directly; mqtt: publish as each device (its own credentials, "
                        "TLS) to the broker, and the bridge forwards to Kafka")
    p.add_argument("--offline-devices", type=int, default=d.offline_devices, metavar="N",
                   help="N devices go offline once, buffer their readings and send the backlog when back")
    p.add_argument("--offline-s", type=float, default=d.offline_s, help="how long each is offline (simulated s)")
    p.add_argument("--reconnect-storms", type=int, default=d.reconnect_storms, metavar="N",
                   help="(mqtt) N times, every device disconnects and reconnects at once")
    p.add_argument("--manifest", type=Path, default=None, help="default: <data_dir>/simulate/manifest.json")
    p.add_argument("--dry-run", action="store_true", help="no registry, no Kafka: only the manifest")
    p.set_defaults(func=run)


def spec_from_args(args: argparse.Namespace) -> SimulationSpec:
    readings = args.readings_per_device or SimulationSpec.readings_per_device
    if args.duration:
        readings = max(1, math.ceil(_duration_s(args.duration) / args.interval_s))
    return SimulationSpec(
        devices=args.devices,
        sites=args.sites,
        readings_per_device=readings,
        interval_s=args.interval_s,
        seed=args.seed,
        start_ms=parse_time_ms(args.start),
        topic=args.topic,
        anomalies=not args.no_anomalies,
        overheat_run=args.overheat_run,
        out_of_order=args.out_of_order,
        out_of_order_max_s=args.out_of_order_max_s,
        late=args.late,
        late_margin_s=args.late_margin_s,
        duplicates=args.duplicates,
        malformed=args.malformed,
        v1_fraction=args.v1_fraction,
        auto_register=not args.no_auto_register,
        transactional_id=args.transactional_id,
        progress_every=args.progress_every,
        rate=args.rate,
        via=args.via,
        offline_devices=args.offline_devices,
        offline_s=args.offline_s,
        reconnect_storms=args.reconnect_storms,
    )


def run(args: argparse.Namespace, config: Config) -> int:
    """`kappa simulate`: run, write the manifest, print one summary line."""
    try:
        spec = spec_from_args(args)
        manifest = simulate(config, spec, produce=not args.dry_run)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"simulate: error: {exc}", file=sys.stderr)
        return 1
    path = args.manifest or config.data_dir / "simulate" / "manifest.json"
    manifest.write(path)
    c = manifest.data["counts"]
    where = "dry run" if args.dry_run else f"topic {manifest.data['topic']}"
    if args.via == "mqtt" and not args.dry_run:
        where = f"published by {args.devices} devices over MQTT; the bridge forwards to {manifest.data['topic']}"
    print(
        f"simulate: {c['total']} records ({where}): valid {c['valid']}, out_of_order {c['out_of_order']}, "
        f"late {c['late']}, duplicate {c['duplicate']}, malformed {c['malformed']}, "
        f"v1/v2 {c['schema_versions']['v1']}/{c['schema_versions']['v2']}, "
        f"anomalies {len(manifest.data['anomalies'])}, backlog {c['backlog']}; {manifest.elapsed_s:.1f}s; "
        f"manifest {path}"
    )
    return 0
