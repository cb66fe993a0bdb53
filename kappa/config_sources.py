"""The sources pydantic-settings builds `kappa.config.Config` from, for one `load_config` call."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, EnvSettingsSource, InitSettingsSource, TomlConfigSettingsSource
from pydantic_settings.sources import PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars


@dataclass(frozen=True)
class Request:
    """What one `load_config` call reads: `settings_customise_sources` cannot take arguments."""

    path: Path
    profile: str
    has_profile_table: bool
    environ: Mapping[str, str]


REQUEST: ContextVar[Request | None] = ContextVar("kappa_config_request", default=None)


class Environment(EnvSettingsSource):
    """`KAPPA_*` variables from the mapping given to `load_config` (os.environ by default).

    A `KAPPA_<SECTION>__<KEY>` whose section does not exist is an error, as a misspelt key is.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, False, False, None)

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        sections = set(self.settings_cls.model_fields)
        for name in self.env_vars:
            section, delimiter, _ = name.removeprefix(self.env_prefix.lower()).partition("__")
            if name.startswith(self.env_prefix.lower()) and delimiter and section not in sections:
                values.setdefault(section, {})  # pydantic names it: "<section>: Extra inputs are not permitted"
        return values


class BaseTables(TomlConfigSettingsSource):
    """`kappa.toml` without its `[profiles.*]` tables (the profile's table is a source of its own)."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        tables = super()._read_file(file_path)
        tables.pop("profiles", None)
        return tables


def sources(settings_cls: type[BaseSettings], request: Request) -> tuple[PydanticBaseSettingsSource, ...]:
    """Highest priority first: KAPPA_* variables, `[profiles.<name>]`, the base tables."""
    profile: PydanticBaseSettingsSource = (
        TomlConfigSettingsSource(settings_cls, request.path, toml_table_header=("profiles", request.profile))
        if request.has_profile_table
        else InitSettingsSource(settings_cls, {})
    )
    return Environment(settings_cls, request.environ), profile, BaseTables(settings_cls, request.path)
