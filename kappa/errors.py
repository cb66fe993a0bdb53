"""Errors meant for the user: the CLI prints their message (no traceback) and exits non-zero."""


class KappaError(RuntimeError):
    """Base of every error whose message alone tells the user what is wrong and what to do."""


class ConfigError(KappaError, ValueError):
    """The configuration cannot be loaded: unknown profile, unreadable file, a value of the wrong type."""


class MissingSecret(KappaError, KeyError):
    """A secret is neither in the environment nor in the stack's generated secrets file.

    Also a `KeyError`, so callers that probe for an optional secret keep working.
    """

    def __str__(self) -> str:  # KeyError quotes its message; this one is read by people
        return str(self.args[0]) if self.args else ""


class UnknownService(KappaError, KeyError):
    """A service name the stack does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
