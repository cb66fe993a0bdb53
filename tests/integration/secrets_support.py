"""Where a generated secret must never appear: the stack's logs, any process's argv, Flink's REST replies."""

from __future__ import annotations

from pathlib import Path

import requests

from kappa.config import LOCAL_SECRETS_FILE, Config, read_env_file

LOG_SUFFIXES = (".log", ".out", ".err")


def generated_secrets(config: Config) -> dict[str, str]:
    """The secrets `kappa stack up` generated for this stack (name -> value)."""
    return {name: value for name, value in read_env_file(config.data_dir / LOCAL_SECRETS_FILE).items() if value}


def leaks(config: Config, flink_job_id: str | None = None) -> list[str]:
    """Every place a generated secret was found, as 'SECRET_NAME in WHERE'."""
    secrets = generated_secrets(config)
    assert secrets, "no generated secrets to look for"
    found: list[str] = []

    def scan(where: str, text: str) -> None:
        found.extend(f"{name} in {where}" for name, value in secrets.items() if value in text)

    for path in config.data_dir.rglob("*"):
        if path.is_file() and (path.suffix in LOG_SUFFIXES or ".log" in path.name):
            scan(str(path), path.read_text(errors="replace"))
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                scan(f"argv of pid {proc.name}", (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"))
            except OSError:
                continue  # the process ended meanwhile
    rest = config.flink.rest_url
    paths = ["/jobmanager/config", "/config", "/jobs/overview", "/taskmanagers"]
    if flink_job_id:
        paths += [f"/jobs/{flink_job_id}", f"/jobs/{flink_job_id}/config", f"/jobs/{flink_job_id}/plan",
                  f"/jobs/{flink_job_id}/exceptions"]
    for path in paths:
        scan(f"Flink REST {path}", requests.get(rest + path, timeout=10).text)
    return found
