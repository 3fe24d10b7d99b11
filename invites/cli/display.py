"""What the command line shows a person: a progress bar, tables and notes, on a chosen stream.

``rich`` (the ``cli`` extra) draws them when it is installed, imported only when something is
drawn; without it the same information is written as plain text.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any, Protocol, TextIO

__all__ = ["Progress", "has_rich", "progress_bar", "table"]


def has_rich() -> bool:
    """Whether ``rich`` can be imported (it is optional)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for anything that cannot say)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- tables ----------------------------------------------------------------------------------


def table(
    stream: TextIO,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Collection[int] = (),
    sections: Collection[int] = (),
) -> None:
    """Draw ``rows`` under ``columns``; ``right`` holds right-aligned column indexes and
    ``sections`` the row indexes that start a new group (a rule is drawn above them)."""
    if has_rich():
        _rich_table(stream, columns, rows, right, sections)
    else:
        _plain_table(stream, columns, rows, right, sections)


def _natural_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max([len(columns[i]), *(len(row[i]) for row in rows)]) for i in range(len(columns))]


def _rich_table(
    stream: TextIO,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Collection[int],
    sections: Collection[int],
) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = is_terminal(stream)
    # Piped or captured output gets the table's full width instead of rich's 80 columns.
    width = None if terminal else sum(_natural_width(columns, rows)) + 3 * len(columns) + 2
    console = Console(file=stream, highlight=False, width=width)
    drawn = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for index, name in enumerate(columns):
        drawn.add_column(name, justify="right" if index in right else "left", no_wrap=False)
    for index, row in enumerate(rows):
        if index in sections and index:
            drawn.add_section()
        # Text, not str: a cell such as "[Circular Reference]" must not be read as markup.
        drawn.add_row(*(Text(cell) for cell in row))
    console.print(drawn)


def _plain_table(
    stream: TextIO,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Collection[int],
    sections: Collection[int],
) -> None:
    widths = _natural_width(columns, rows)

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    out = [line(columns), rule]
    for index, row in enumerate(rows):
        if index in sections and index:
            out.append("")
        out.append(line(row))
    stream.write("\n".join(out) + "\n")


# -- progress --------------------------------------------------------------------------------


class Progress(Protocol):
    """A running progress display."""

    def advance(self) -> None:
        """One more item done."""

    def note(self, text: str) -> None:
        """Write a line of text above the display."""

    def stop(self) -> None:
        """Leave the display in its final state."""


class _Quiet:
    """No display: notes go straight to the stream."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def advance(self) -> None:
        pass

    def note(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def stop(self) -> None:
        pass


def progress_bar(stream: TextIO, total: int | None, label: str, *, show: bool) -> Progress:
    """A progress display on ``stream`` (rate, ETA) when ``show``; else notes only."""
    if not show:
        return _Quiet(stream)
    if has_rich():
        return _RichProgress(stream, total, label)
    return _PlainProgress(stream, total, label)


class _RichProgress:
    def __init__(self, stream: TextIO, total: int | None, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text("" if speed is None else f"{speed:,.1f}/s", style="progress.data.speed")

        self._console = Console(file=stream, highlight=False)
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeRemainingColumn(),
            console=self._console,
            redirect_stdout=False,  # stdout carries the JSON Lines output
            redirect_stderr=True,  # log lines written meanwhile go above the bar
        )
        self._task = self._progress.add_task(label, total=total)
        self._progress.start()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def note(self, text: str) -> None:
        from rich.text import Text

        self._console.print(Text(text))

    def stop(self) -> None:
        self._progress.stop()


class _PlainProgress:
    """A one-line progress display redrawn in place with a carriage return."""

    def __init__(self, stream: TextIO, total: int | None, label: str) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self._draw(force=True)

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn_at < 0.1:
            return
        self.drawn_at = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [self.label, f"{self.done}/{self.total}" if self.total else str(self.done)]
        if rate:
            parts.append(f"{rate:,.1f}/s")
            if self.total and self.total > self.done:
                remaining = int((self.total - self.done) / rate)
                parts.append(
                    f"ETA {remaining // 3600}:{remaining // 60 % 60:02d}:{remaining % 60:02d}"
                )
        self.stream.write("\r\x1b[K" + "  ".join(parts))
        self.stream.flush()

    def advance(self) -> None:
        self.done += 1
        self._draw()

    def note(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text + "\n")
        self._draw(force=True)

    def stop(self) -> None:
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()
