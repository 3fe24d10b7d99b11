"""``invites resend``: resend to invitees given as ids, or read from a CSV or JSON Lines file.

Output is one JSON object per invitee (stdout or ``--output``), in completion order. People read
stderr: bad rows with their line numbers, a progress bar when it is a terminal, and a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from .._base import BaseProvider
from .._protocol import InviteProvider
from ..bulk import Outcome, resend_many
from ..errors import InvalidInvitee, InviteError
from ..models import Invitee
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    is_terminal,
    open_profiles,
    pick_profile,
)
from .display import Progress, progress_bar, table
from .journal import DONE, Journal, JournalError
from .rows import BadRow, InputError, InputFile, Row, Rows, from_arguments

__all__ = ["record_of", "run"]

_ORDER = ("sent", "already_verified", "failed", "unknown")


def record_of(outcome: Outcome) -> dict[str, Any]:
    """The output line for one outcome: user_id, outcome, error, message, status_code."""
    error = outcome.error
    message: str | None = None
    status_code: int | None = None
    if outcome.result is not None:
        message = outcome.result.message
        status_code = outcome.result.status_code
    elif isinstance(error, InviteError):
        message = error.message
        status_code = error.status_code
    elif error is not None:
        message = str(error)
    return {
        "user_id": outcome.user_id,
        "outcome": outcome.status,
        "error": type(error).__name__ if error is not None else None,
        "message": message,
        "status_code": status_code,
    }


def _vendor_problem(provider: InviteProvider, invitee: Invitee) -> str | None:
    """Why the vendor's adapter would refuse ``invitee`` before sending anything, if it would.

    A vendor flow checks its invitee before its first request, so running it up to that request
    (which is never made) validates the row without any I/O.
    """
    if not isinstance(provider, BaseProvider):
        return None
    flow = provider.flow(invitee)
    try:
        next(flow)
    except InvalidInvitee as exc:
        return exc.message
    except StopIteration:
        pass
    finally:
        flow.close()
    return None


class _Run:
    """One ``resend`` invocation: reads rows, resends, writes outcomes, counts."""

    def __init__(
        self, args: argparse.Namespace, provider: InviteProvider, stdout: TextIO, stderr: TextIO
    ) -> None:
        self.args = args
        self.provider = provider
        self.stdout = stdout
        self.stderr = stderr
        self.dry_run: bool = args.dry_run
        self.journal: Journal | None = None
        self.output: TextIO | None = None
        self.screen: Progress = progress_bar(stderr, None, "", show=False)
        self.counts: Counter[tuple[str, str]] = Counter()
        self.skipped: Counter[str] = Counter()
        self.duplicates = 0
        self.would_send = 0
        self.seen: set[str] = set()
        self.write_failure: str | None = None

    # -- talking to the person -----------------------------------------------------------------

    def note(self, text: str) -> None:
        self.screen.note(f"invites: {text}")

    # -- the run ---------------------------------------------------------------------------------

    def execute(self) -> int:
        args = self.args
        with contextlib.ExitStack() as stack:
            sources: list[Rows] = [from_arguments(args.user_ids)]
            input_file: InputFile | None = None
            if args.input is not None:
                try:
                    input_file = stack.enter_context(InputFile(args.input, warn=self.note))
                except InputError as exc:
                    raise UsageError(str(exc)) from None
                sources.append(input_file.rows())
            elif not args.user_ids:
                raise UsageError("nothing to resend: give user ids or --input FILE")
            if args.journal is not None:
                try:
                    self.journal = Journal(args.journal, writable=not self.dry_run, warn=self.note)
                except JournalError as exc:
                    raise UsageError(f"journal {exc}") from None
                stack.callback(self.journal.close)
            if not self.dry_run:
                if args.output is None:
                    self.output = self.stdout
                else:
                    try:
                        self.output = stack.enter_context(open(args.output, "w", encoding="utf-8"))
                    except OSError as exc:
                        raise UsageError(f"{args.output}: cannot write ({exc.strerror})") from None
            # A bar only where a person watches stderr and stdout is not scrolling past on
            # the same terminal.
            show = is_terminal(self.stderr) and (
                args.output is not None or self.dry_run or not is_terminal(self.stdout)
            )
            total = len(args.user_ids)
            if show and input_file is not None:
                total += input_file.count()
            self.screen = progress_bar(
                self.stderr, total or None, "checking" if self.dry_run else "resending", show=show
            )
            return self._drive(itertools.chain.from_iterable(sources))
        raise AssertionError("unreachable")  # pragma: no cover

    def _drive(self, rows: Rows) -> int:
        started = time.monotonic()
        interrupted = False
        input_failure: InputError | None = None
        try:
            invitees = self._invitees(rows)
            if self.dry_run:
                for _ in invitees:
                    pass
            else:
                stream = self._stream(invitees)
                # closing: an interrupt between two outcomes still settles the ones in flight
                # before the summary is drawn.
                with contextlib.closing(stream):
                    for _ in stream:
                        pass
        except KeyboardInterrupt:
            interrupted = True
        except InputError as exc:
            input_failure = exc
        finally:
            self.screen.stop()
        elapsed = time.monotonic() - started
        self.screen = progress_bar(self.stderr, None, "", show=False)
        if interrupted:
            self.note("interrupted; the resends in flight finished and were recorded")
        if input_failure is not None:
            self.note(f"stopped reading: {input_failure}")
        if self.write_failure is not None:
            self.note(f"stopped: {self.write_failure}")
        self._summary(elapsed)
        if interrupted:
            return EXIT_INTERRUPTED
        if input_failure is not None or self.write_failure is not None:
            return EXIT_USAGE
        bad = any(outcome in ("failed", "unknown") for outcome, _ in self.counts)
        return EXIT_FAILED if bad or self.skipped["unknown"] else EXIT_OK

    def _stream(self, invitees: Iterator[Invitee]) -> Generator[Outcome, None, None]:
        if self.args.via == "celery":
            from .fanout import stream

            return stream(self.args, self.provider, invitees, self._completed, self.note)
        return resend_many(
            self.provider, invitees, concurrency=self.args.concurrency, on_outcome=self._completed
        )

    def _invitees(self, rows: Rows) -> Iterator[Invitee]:
        """The invitees to resend to; bad, repeated and journaled rows are settled here."""
        journal = self.journal
        for row in rows:
            if self.write_failure is not None:
                return
            if isinstance(row, BadRow):
                self._bad(row)
                continue
            invitee = row.invitee
            user_id = invitee.user_id
            if user_id in self.seen:
                self.duplicates += 1
                self.screen.advance()
                self.note(f"{self._where(row)}: user id {user_id!r} repeated; skipped")
                continue
            self.seen.add(user_id)
            prior = journal.prior(user_id) if journal is not None else None
            if prior in DONE or (prior == "unknown" and not self.args.retry_unknown):
                assert prior is not None
                self._skip(user_id, prior)
                continue
            problem = _vendor_problem(self.provider, invitee)
            if problem is not None:
                self._bad(BadRow(row.where, user_id, problem))
                continue
            if self.dry_run:
                self.would_send += 1
                self.screen.advance()
                continue
            yield invitee

    def _where(self, row: Row | BadRow) -> str:
        if row.where.startswith("argument"):
            return row.where
        return f"{self.args.input}: {row.where}"

    # -- recording ---------------------------------------------------------------------------

    def _bad(self, row: BadRow) -> None:
        self.note(f"{self._where(row)}: {row.problem}")
        self._emit(
            {
                "user_id": row.user_id,
                "outcome": "failed",
                "error": InvalidInvitee.__name__,
                "message": f"{row.where}: {row.problem}",
                "status_code": None,
            }
        )

    def _skip(self, user_id: str, prior: str) -> None:
        self.skipped[prior] += 1
        self.screen.advance()
        if self.output is None:
            return
        self._write(
            {
                "user_id": user_id,
                "outcome": prior,
                "error": None,
                "message": f"skipped: the journal shows {prior}",
                "status_code": None,
                "skipped": True,
            }
        )

    def _completed(self, outcome: Outcome) -> None:
        record = record_of(outcome)
        if self.journal is not None and self.write_failure is None:
            try:
                self.journal.append(
                    {
                        **record,
                        "provider": self.provider.name,
                        "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
                )
            except JournalError as exc:
                self.write_failure = f"journal {exc}"
        self._emit(record, skipped=outcome.skipped)

    def _emit(self, record: dict[str, Any], *, skipped: bool = False) -> None:
        self.counts[record["outcome"], record["error"] or ""] += 1
        self.screen.advance()
        if self.output is not None:
            self._write({**record, "skipped": skipped})

    def _write(self, record: dict[str, Any]) -> None:
        output = self.output
        if output is None or self.write_failure is not None:
            return
        try:
            output.write(json.dumps(record, ensure_ascii=False) + "\n")
            output.flush()
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) and output is self.stdout:
                _silence(output)
            where = self.args.output or "standard output"
            self.write_failure = f"{where}: cannot write ({exc.strerror})"

    # -- the summary ---------------------------------------------------------------------------

    def _summary(self, elapsed: float) -> None:
        stderr = self.stderr
        totals = Counter[str]()
        for (outcome, _), count in self.counts.items():
            totals[outcome] += count
        if self.dry_run:
            invalid = totals["failed"]
            parts = [f"{self.would_send} to resend", f"{invalid} invalid"]
            parts += [f"{n} skipped (journal: {status})" for status, n in self.skipped.items()]
            if self.duplicates:
                parts.append(f"{self.duplicates} repeated")
            stderr.write(f"invites: dry run, nothing sent: {', '.join(parts)}\n")
            return
        counted = Counter(
            {(outcome, error or "-"): n for (outcome, error), n in self.counts.items()}
        )
        counted.update({(status, "skipped (journal)"): n for status, n in self.skipped.items()})
        rows = [
            [outcome, detail, str(count)]
            for (outcome, detail), count in sorted(
                counted.items(), key=lambda item: (_ORDER.index(item[0][0]), item[0][1])
            )
        ]
        if rows:
            stderr.write("\n")
            table(stderr, ["outcome", "error", "invitees"], rows, right={2})
        done = sum(totals.values())
        rate = f", {done / elapsed:,.1f}/s" if done and elapsed > 0 else ""
        parts = [
            f"{totals['sent']} sent",
            f"{totals['already_verified']} already verified",
            f"{totals['failed']} failed",
            f"{totals['unknown']} unknown",
        ]
        skipped = sum(self.skipped.values())
        if skipped:
            parts.append(f"{skipped} skipped (journal)")
        if self.duplicates:
            parts.append(f"{self.duplicates} repeated rows ignored")
        stderr.write(
            f"invites: {done + skipped} invitees in {elapsed:.1f}s{rate}: {', '.join(parts)}\n"
        )
        if self.skipped["unknown"]:
            stderr.write(
                f"invites: {self.skipped['unknown']} invitees with an unknown outcome were "
                "skipped; --retry-unknown resends them\n"
            )
        stderr.flush()


def _silence(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, so that exiting does not fail."""
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``invites resend`` with parsed ``args``; returns the exit status."""
    profiles = open_profiles(args.config)
    try:
        _, provider = pick_profile(profiles, args.profile, args.config)
        return _Run(args, provider, stdout, stderr).execute()
    finally:
        profiles.close()
