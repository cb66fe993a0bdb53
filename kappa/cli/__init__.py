"""The `kappa` command line on Click: one thin module per command group, imported only when used."""

from kappa.cli.main import main

__all__ = ["main"]
