"""What the command modules share: the config of the chosen profile, `--set NAME=VALUE`, job options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kappa.config import Config
    from kappa.flinkenv import JobOptions

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """`ctx.obj` of the root group: the profile chosen with --profile; the config is loaded on first use
    (so `kappa stack --help` works with a broken kappa.toml)."""

    profile: str | None = None
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from kappa.config import load_config

            self._config = load_config(profile=self.profile)
        return self._config


def pass_config(func: F) -> F:
    """Call the command with the loaded `Config` as its first argument."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = click.get_current_context().find_object(State) or State()
        return func(state.config, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def key_values(ctx: click.Context, param: click.Parameter, items: tuple[str, ...]) -> dict[str, str]:
    """Click callback of a repeatable NAME=VALUE option: a dict, or a usage error naming the bad item."""
    bad = [item for item in items if "=" not in item]
    if bad:
        raise click.BadParameter(f"wants NAME=VALUE, got {bad[0]!r}", ctx=ctx, param=param)
    return dict(item.split("=", 1) for item in items)


def set_option(help_text: str) -> Callable[[F], F]:
    return click.option("--set", "extra", multiple=True, metavar="NAME=VALUE", callback=key_values,
                        help=help_text)


def job_options(func: F) -> F:
    """The options of `kappa run` and `kappa submit` (kappa.jobrunner.add_job_arguments for job scripts)."""
    for decorator in reversed([
        click.option("--bounded", is_flag=True, help="read Kafka up to the end offsets at start, then finish"),
        click.option("--output-suffix", default="", help="versioned outputs, e.g. _v2 (replays)"),
        click.option("--parallelism", type=int, help="override flink.parallelism"),
        click.option("--no-lake", is_flag=True, help="leave out the Iceberg archive's inserts (jobs that write one)"),
        click.option("--lake-suffix", help="the Iceberg tables' suffix (default: --output-suffix; '' = the live ones)"),
        click.option("--lake-branch", help="write this branch of the Iceberg tables instead of main (replays)"),
        set_option("extra SQL placeholder value (repeatable)"),
    ]):
        func = decorator(func)
    return func


def make_job_options(bounded: bool, output_suffix: str, parallelism: int | None, no_lake: bool,
                     extra: dict[str, str], lake_suffix: str | None = None,
                     lake_branch: str | None = None) -> JobOptions:
    from kappa.flinkenv import JobOptions

    return JobOptions(bounded=bounded, output_suffix=output_suffix, parallelism=parallelism, extra=extra,
                      lake=not no_lake, lake_suffix=lake_suffix, lake_branch=lake_branch)


def progress(line: str) -> None:
    """Progress of long work: one line on stderr, so stdout stays the result."""
    click.echo(line, err=True)
