"""Progress of long work (simulate, replay, archive): a bar on a terminal, one-line messages elsewhere.

Off a terminal (a pipe, a log file, CI) the output stays the one-line progress messages it always was;
on a terminal a Click progress bar shows done/total with an ETA, and any message ends the bar's line
first (the bar starts again below it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

Advance = Callable[[int, int], None]  # (done, total): work done so far out of the total known now
Say = Callable[[str], None]
REDRAW_S = 0.1  # a bar redraws at most this often (simulate advances once per record)


def on_terminal(stream: TextIO) -> bool:
    return stream.isatty()


class _Bar:
    """A Click progress bar drawn on the first `advance`, ended by `say` or at the end of the work."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream = label, stream
        self._bar: Any = None
        self._drawn = 0.0

    def advance(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._bar is not None and done < total and now - self._drawn < REDRAW_S:
            return
        self._drawn = now
        if self._bar is None:
            self._bar = click.progressbar(length=max(total, 1), label=self.label, file=self.stream,
                                          show_pos=True, show_percent=True, show_eta=True).__enter__()
        bar = self._bar
        bar.length = max(total, 1)  # a followed topic grows: the total is the one known now
        bar.finished = done >= bar.length
        bar.update(max(done - bar.pos, 0))

    def say(self, text: str) -> None:
        self.close()
        click.echo(text, file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@contextmanager
def reporting(label: str, stream: TextIO | None = None) -> Iterator[tuple[Say, Advance | None]]:
    """(say, advance) for a long piece of work: `advance` is None off a terminal (the work then keeps
    its one-line progress messages), and `say` prints a message either way."""
    out = stream or sys.stderr
    if not on_terminal(out):

        def say(text: str) -> None:
            click.echo(text, file=out)

        yield say, None
        return
    bar = _Bar(label, out)
    try:
        yield bar.say, bar.advance
    finally:
        bar.close()
