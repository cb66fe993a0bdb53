"""CLI command groups; each module adds its subcommands to the `kappa` parser."""
