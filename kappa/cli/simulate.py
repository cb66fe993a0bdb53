"""`kappa simulate`: its options, the spec they make, and the summary line (kappa.simulate)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kappa.cli.common import pass_config
from kappa.cli.progress import reporting
from kappa.simulate import model
from kappa.simulate.model import DEFAULT_START, VIA, SimulationSpec, parse_time_ms

if TYPE_CHECKING:
    from kappa.config import Config

_DEFAULTS = SimulationSpec()
# the model's docstring as the description, its paragraphs kept as written (\b: Click does not rewrap them)
_DESCRIPTION = "\n\n".join("\b\n" + part for part in (model.__doc__ or "").strip().split("\n\n"))


def duration_s(text: str) -> float:
    """'30m', '2h', '1d', '45s' or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration such as 30m, 2h or 90s",
                                 param_hint="'--duration'") from None


def spec_from_options(options: dict[str, Any]) -> SimulationSpec:
    """The SimulationSpec of `kappa simulate`'s options (as Click passes them)."""
    if options["readings_per_device"] and options["duration"]:
        raise click.UsageError("--readings-per-device and --duration exclude each other")
    readings = options["readings_per_device"] or _DEFAULTS.readings_per_device
    if options["duration"]:
        readings = max(1, math.ceil(duration_s(options["duration"]) / options["interval_s"]))
    return SimulationSpec(
        devices=options["devices"], sites=options["sites"], readings_per_device=readings,
        interval_s=options["interval_s"], seed=options["seed"], start_ms=parse_time_ms(options["start"]),
        topic=options["topic"], anomalies=not options["no_anomalies"], overheat_run=options["overheat_run"],
        out_of_order=options["out_of_order"], out_of_order_max_s=options["out_of_order_max_s"],
        late=options["late"], late_margin_s=options["late_margin_s"], duplicates=options["duplicates"],
        malformed=options["malformed"], v1_fraction=options["v1_fraction"], v3_fraction=options["v3_fraction"],
        auto_register=not options["no_auto_register"], transactional_id=options["transactional_id"],
        progress_every=options["progress_every"], rate=options["rate"], via=options["via"],
        offline_devices=options["offline_devices"], offline_s=options["offline_s"],
        reconnect_storms=options["reconnect_storms"],
    )


def _options(func: Any) -> Any:
    d = _DEFAULTS
    for decorator in reversed([
        click.option("--devices", type=int, default=d.devices, show_default=True),
        click.option("--sites", type=int, default=d.sites, show_default=True),
        click.option("--readings-per-device", type=int, default=None, help=f"default {d.readings_per_device}"),
        click.option("--duration", help="simulated time span, e.g. 30m, 2h (sets readings per device)"),
        click.option("--interval-s", type=float, default=d.interval_s, show_default=True),
        click.option("--seed", type=int, default=d.seed, show_default=True),
        click.option("--start", default=DEFAULT_START, show_default=True,
                     help="event time of the first reading (ISO 8601, UTC)"),
        click.option("--topic", default=None, help="default: kafka.telemetry_topic"),
        click.option("--no-anomalies", is_flag=True, help="do not plant anomalies"),
        click.option("--overheat-run", type=int, default=d.overheat_run, show_default=True),
        click.option("--out-of-order", type=float, default=0.0, metavar="FRACTION"),
        click.option("--out-of-order-max-s", type=float, default=None, help="default: the watermark delay"),
        click.option("--late", type=float, default=0.0, metavar="FRACTION"),
        click.option("--late-margin-s", type=float, default=d.late_margin_s, show_default=True),
        click.option("--duplicates", type=float, default=0.0, metavar="FRACTION"),
        click.option("--malformed", type=int, default=0, metavar="N", help="N records of each malformed kind"),
        click.option("--v1-fraction", type=float, default=0.0, help="fraction of readings written with schema v1"),
        click.option("--v3-fraction", type=float, default=0.0,
                     help="fraction of readings written with schema v3 (uptime_s); the rest are v2"),
        click.option("--no-auto-register", is_flag=True, help="schemas must already be registered"),
        click.option("--transactional-id", default=None, help="produce in Kafka transactions"),
        click.option("--progress-every", type=int, default=d.progress_every, show_default=True,
                     help="a progress line on stderr every N records (0: none)"),
        click.option("--rate", type=float, default=None, metavar="RECORDS_PER_S",
                     help="produce at this steady rate (default: as fast as the broker takes them)"),
        click.option("--via", type=click.Choice(VIA), default=d.via, show_default=True,
                     help="kafka: produce to the topic directly; mqtt: publish as each device (its own "
                          "credentials, TLS) to the broker, and the bridge forwards to Kafka"),
        click.option("--offline-devices", type=int, default=d.offline_devices, metavar="N",
                     help="N devices go offline once, buffer their readings and send the backlog when back"),
        click.option("--offline-s", type=float, default=d.offline_s, help="how long each is offline (simulated s)"),
        click.option("--reconnect-storms", type=int, default=d.reconnect_storms, metavar="N",
                     help="(mqtt) N times, every device disconnects and reconnects at once"),
        click.option("--manifest", type=click.Path(path_type=Path), default=None,
                     help="default: <data_dir>/simulate/manifest.json"),
        click.option("--dry-run", is_flag=True, help="no registry, no Kafka: only the manifest"),
    ]):
        func = decorator(func)
    return func


@click.command(short_help="produce deterministic simulated telemetry (with anomalies and faults) to Kafka",
               help=_DESCRIPTION)
@_options
@pass_config
def simulate(config: Config, **options: Any) -> int:
    """`kappa simulate`: run, write the manifest, print one summary line."""
    from kappa.simulate import simulate as run_simulation

    spec = spec_from_options(options)
    dry_run = options["dry_run"]
    try:
        with reporting("simulate") as (say, advance):
            manifest = run_simulation(config, spec, produce=not dry_run, log=say, advance=advance)
    except ValueError as exc:  # the spec does not hold together: the options' mistake
        raise click.UsageError(str(exc)) from exc
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(f"simulate: {exc}") from exc
    path = options["manifest"] or config.data_dir / "simulate" / "manifest.json"
    manifest.write(path)
    c = manifest.data["counts"]
    where = "dry run" if dry_run else f"topic {manifest.data['topic']}"
    if options["via"] == "mqtt" and not dry_run:
        where = f"published by {spec.devices} devices over MQTT; the bridge forwards to {manifest.data['topic']}"
    click.echo(
        f"simulate: {c['total']} records ({where}): valid {c['valid']}, out_of_order {c['out_of_order']}, "
        f"late {c['late']}, duplicate {c['duplicate']}, malformed {c['malformed']}, "
        f"v1/v2/v3 {'/'.join(str(c['schema_versions'][v]) for v in ('v1', 'v2', 'v3'))}, "
        f"anomalies {len(manifest.data['anomalies'])}, backlog {c['backlog']}; {manifest.elapsed_s:.1f}s; "
        f"manifest {path}"
    )
    return 0
