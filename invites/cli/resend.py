"""``invites resend``: resend to invitees given as ids, or read from a CSV or JSON Lines file.

Output is one JSON object per input row (stdout or ``--output``), in completion order, each
naming its row (``"row": "line 7"``); a repeated user id gets its own line carrying the first
row's outcome and ``duplicate_of``. People read stderr: bad rows with their line numbers, a
progress bar when it is a terminal, and a summary.

``--journal LEDGER`` (a path, ``sqlite:///`` or ``postgresql://`` URL; without it, the profile's
``ledger``) is a ledger (:mod:`invites.ledger`): each resend is claimed in it before it is sent and
its outcome recorded after, so a rerun with the same ledger and ``--run`` resumes without
emailing anyone twice, however the earlier run ended. A ledger that cannot be opened or read stops
the run before anything is sent (exit status 2). SIGTERM is handled like
Ctrl-C: nothing new starts, the resends in flight finish and are recorded, and a second signal
only repeats that it is stopping.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Generator, Iterator
from types import FrameType
from typing import Any, Final, TextIO

from .._protocol import InviteProvider
from .._settings.identity import canonical_user_id
from ..bulk import Outcome, resend_many
from ..errors import InvalidInvitee
from ..ledger import Ledger, RecordKey, provider_identity
from ..models import Invitee
from .check import vendor_problem
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    UsageError,
    is_terminal,
    open_profiles,
)
from .display import Progress, progress_bar
from .fanout import sending_profile
from .ledger_user import would_refuse
from .report import Tally, record_of, silence
from .rows import BadRow, InputError, InputFile, Row, Rows, from_arguments
from .where import label, open_target, probe, sqlite_path

__all__ = ["record_of", "run"]


#: What a repeated row copies from its first row's output line.
_COPIED = ("outcome", "error", "message", "status_code")


class _Run:
    """One ``resend`` invocation: reads rows, resends, writes outcomes, counts."""

    def __init__(
        self,
        args: argparse.Namespace,
        provider: InviteProvider,
        stdout: TextIO,
        stderr: TextIO,
        profile: str = "",
    ) -> None:
        self.args = args
        self.provider = provider
        self.profile = profile
        self.stdout = stdout
        self.stderr = stderr
        self.dry_run: bool = args.dry_run
        self.ledger: Ledger | None = None
        self.output: TextIO | None = None
        self.screen: Progress = progress_bar(stderr, None, "", show=False)
        self.tally = Tally()
        # canonical user id -> its first row; its output fields once known; repeats waiting
        self.first_row: dict[str, str] = {}
        self.settled: dict[str, tuple[Any, ...]] = {}
        self.waiting: dict[str, list[tuple[str, str]]] = {}
        self.write_failure: str | None = None
        self.stopping: int | None = None  # the signal that asked to stop
        self.signals = 0

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
            self.ledger = self._open_ledger()
            if self.ledger is not None:
                stack.callback(self.ledger.close)
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
        return self._finish(elapsed, interrupted, input_failure)

    def _finish(self, elapsed: float, interrupted: bool, input_failure: InputError | None) -> int:
        stopped = interrupted or self.stopping is not None
        if stopped:
            how = "terminated" if self.stopping == signal.SIGTERM else "interrupted"
            again = f" ({self.signals} signals)" if self.signals > 1 else ""
            self.note(f"{how}{again}; the resends in flight finished and were recorded")
        if input_failure is not None:
            self.note(f"stopped reading: {input_failure}")
        if self.write_failure is not None:
            self.note(f"stopped: {self.write_failure}")
        self.tally.write(self.stderr, elapsed, dry_run=self.dry_run)
        if self.stopping == signal.SIGTERM:
            return EXIT_TERMINATED
        if stopped:
            return EXIT_INTERRUPTED
        if input_failure is not None or self.write_failure is not None:
            return EXIT_USAGE
        bad = any(outcome in ("failed", "unknown") for outcome, _ in self.tally.counts)
        return EXIT_FAILED if bad or self.tally.skipped["unknown"] else EXIT_OK

    def _stream(self, invitees: Iterator[Invitee]) -> Generator[Outcome, None, None]:
        if self.args.via == "celery":
            from .fanout import stream

            return stream(self.args, self.provider, invitees, self._completed, self.note)
        return resend_many(
            self.provider,
            invitees,
            concurrency=self.args.concurrency,
            on_outcome=self._completed,
            ledger=self.ledger,
            run=self.args.run if self.ledger is not None else None,
            retry_unknown=self.args.retry_unknown,
            ignore_budget=self.args.ignore_budget and self.ledger is not None,
        )

    def _invitees(self, rows: Rows) -> Iterator[Invitee]:
        """The invitees to resend to; bad and repeated rows are settled here."""
        for row in rows:
            if self.stopping is not None:
                name = signal.Signals(self.stopping).name
                self.note(f"{name}: stopping; nothing new starts, the resends in flight finish")
                return
            if self.write_failure is not None:
                return
            if isinstance(row, BadRow):
                self._bad(row)
                continue
            invitee = row.invitee
            user_id = canonical_user_id(self.provider, invitee.user_id)
            if user_id in self.first_row:
                self._repeat(row, user_id)
                continue
            self.first_row[user_id] = row.where
            problem = vendor_problem(self.provider, invitee)
            if problem is not None:
                self._bad(BadRow(row.where, invitee.user_id, problem), user_id)
                continue
            if self.dry_run:
                self._check(user_id)
                continue
            yield invitee

    def _open_ledger(self) -> Ledger | None:
        """The run's ledger: ``--journal``, else the profile's ``ledger`` (None: neither).

        It must answer a read before anything is sent: one that cannot stops the run (exit 2).
        A dry run reads an existing SQLite file only, and never creates one.
        """
        target, origin = self.args.journal, "--journal"
        if target is None and self.args.via == "local":
            target = getattr(getattr(self.provider, "settings", None), "ledger", None)
            origin = f"the ledger of profile {self.profile!r}"
        if not isinstance(target, str):
            return None
        path = sqlite_path(target)
        if self.dry_run and path is not None and not os.path.exists(path):
            self.note(f"ledger {label(target)} ({origin}) does not exist yet: nothing recorded")
            return None
        ledger = open_target(target, must_exist=False)
        probe(ledger, target, RecordKey(self.args.run, provider_identity(self.provider), ""))
        self.note(f"ledger {label(target)} ({origin}), run {self.args.run!r}")
        return ledger

    def _check(self, user_id: str) -> None:
        """Dry run: count what a real run would send, and what the journal would skip."""
        self.screen.advance()
        if self.ledger is not None:
            key = RecordKey(self.args.run, provider_identity(self.provider), user_id)  # canonical
            record = self.ledger.get(key)
            status = None if record is None else record.status()
            if status in ("sent", "already_verified") or (
                status == "unknown" and not self.args.retry_unknown
            ):
                assert status is not None
                self.tally.skipped[status] += 1
                return
            if not self.args.ignore_budget and would_refuse(self.ledger, self.provider, user_id):
                self.tally.too_soon += 1
                return
        self.tally.would_send += 1

    def _where(self, row: Row | BadRow) -> str:
        if row.where.startswith("argument"):
            return row.where
        return f"{self.args.input}: {row.where}"

    # -- recording ---------------------------------------------------------------------------

    def _bad(self, row: BadRow, key: str | None = None) -> None:
        self.note(f"{self._where(row)}: {row.problem}")
        self._emit(
            key,
            {
                "user_id": row.user_id,
                "row": row.where,
                "outcome": "failed",
                "error": InvalidInvitee.__name__,
                "message": f"{row.where}: {row.problem}",
                "status_code": None,
                "skipped": False,
            },
        )

    def _repeat(self, row: Row, key: str) -> None:
        """``row`` names the user an earlier row named (``key``: their canonical id)."""
        written = row.invitee.user_id
        self.tally.duplicates += 1
        self.screen.advance()
        first = self.first_row[key]
        self.note(f"{self._where(row)}: user id {written!r} repeated ({first}); sent at most once")
        if key in self.settled:
            self._write_repeat(key, written, row.where)
        else:
            self.waiting.setdefault(key, []).append((written, row.where))

    def _write_repeat(self, key: str, written: str, where: str) -> None:
        record = {
            "user_id": written,
            "row": where,
            **dict(zip(_COPIED, self.settled[key], strict=True)),
        }
        self._write(key, {**record, "skipped": True, "duplicate_of": self.first_row[key]})

    def _completed(self, outcome: Outcome) -> None:
        record = record_of(outcome)
        record["row"] = self.first_row.get(outcome.user_id)
        record["skipped"] = outcome.skipped
        if outcome.skipped:
            if outcome.too_soon:  # the budget did its job: not a failure of the run
                self.tally.too_soon += 1
            else:
                self.tally.skipped[outcome.status] += 1
            self.screen.advance()
            self._write(outcome.user_id, record)
        else:
            self._emit(outcome.user_id, record)

    def _emit(self, key: str | None, record: dict[str, Any]) -> None:
        self.tally.counts[record["outcome"], record["error"] or ""] += 1
        self.screen.advance()
        self._write(key, record)

    def _write(self, key: str | None, record: dict[str, Any]) -> None:
        """Write one output line; ``key``: the canonical id of its user (None: a bad row)."""
        if "duplicate_of" not in record and key:
            self.settled[key] = tuple(record[name] for name in _COPIED)
        output = self.output
        if output is not None and self.write_failure is None:
            try:
                output.write(json.dumps(record, ensure_ascii=False) + "\n")
                output.flush()
            except OSError as exc:
                if isinstance(exc, BrokenPipeError) and output is self.stdout:
                    silence(output)
                where = self.args.output or "standard output"
                self.write_failure = f"{where}: cannot write ({exc.strerror})"
        if "duplicate_of" not in record and key:
            for written, where in self.waiting.pop(key, []):
                self._write_repeat(key, written, where)


#: Seconds a stopping run still waits for a ledger write that does not return.
LEDGER_GIVE_UP: Final = 1.5


@contextlib.contextmanager
def _stop_on_signals(run: _Run) -> Iterator[None]:
    """SIGINT and SIGTERM ask the run to stop: nothing new starts, what is in flight finishes.

    A second signal changes nothing: cutting the wait short would leave intents without their
    outcomes (read as unknown); SIGKILL remains for a process that must end at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        # Only flags: a handler runs between any two bytecodes of the main thread, which may be
        # in the middle of writing to the same stream a note would go to.
        if run.stopping is None:
            run.stopping = signum
        run.signals += 1
        # A ledger write that does not return (a frozen file system) must not hold the stop.
        give_up = getattr(run.ledger, "give_up_within", None)
        if callable(give_up):
            give_up(LEDGER_GIVE_UP)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, stop) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``invites resend`` with parsed ``args``; returns the exit status."""
    profiles = open_profiles(args.config)
    try:
        name, provider = sending_profile(profiles, args)  # --via celery: without its token
        run = _Run(args, provider, stdout, stderr, name)
        # Installed until the ledger and the output are closed: a signal then only sets a flag.
        with _stop_on_signals(run):
            return run.execute()
    finally:
        profiles.close()
