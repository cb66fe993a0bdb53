"""Errors meant for the user: the CLI prints their message (no traceback) and exits non-zero."""


class KappaError(RuntimeError):
    """Base of every error whose message alone tells the user what is wrong and what to do."""
