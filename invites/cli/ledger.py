"""``invites ledger show | export | settle``: what runs recorded, and settling unknown outcomes.

A record whose outcome is unknown (an intent with no outcome, or a lost answer) is never resent
by a rerun. A person checks it (the vendor's console, the user), then settles it: ``--as sent``
(it went out: never resent) or ``--as failed`` (it did not: the next rerun sends it).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from .._protocol import InviteProvider
from ..errors import InviteError, redact_url
from ..ledger import Ledger, Record
from ..models import ResendResult
from .common import EXIT_OK, EXIT_USAGE, UsageError, open_profiles, pick_profile
from .display import table
from .ledger_user import show_user, user_records
from .where import label, open_target

__all__ = ["backup", "run"]

#: Records read before a table's column widths are fixed; a longer selection streams after them.
_PAGE = 500


def _target(args: argparse.Namespace) -> tuple[str, InviteProvider | None]:
    """The ledger the command names (``LEDGER``, or the profile's with ``--config``), and the
    profile's provider when one was named."""
    if args.file is not None:
        if args.config is not None:
            raise UsageError("give the ledger or --config, not both")
        return args.file, None
    if args.config is None:
        raise UsageError("which ledger? give its path or URL, or --config (and --profile)")
    profiles = open_profiles(args.config)
    try:
        name, provider = pick_profile(profiles, args.profile, args.config)
        ledger = provider.settings.ledger
    finally:
        profiles.close()
    if ledger is None:
        raise UsageError(f"profile {name!r} in {args.config} has no ledger")
    return ledger, provider


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _reads(record: Record, now: float) -> str:
    """How a record reads for a person: its state, an intent as unknown, in flight or not."""
    if record.state == "intent":
        if record.in_flight(now):
            return f"unknown (in flight until {_when(record.lease_until)})"
        return "unknown (no outcome recorded)"
    return record.state


def _selected(ledger: Ledger, args: argparse.Namespace) -> Iterator[Record]:
    """The records the command selects, streamed from the ledger."""
    for record in ledger.records(run=args.run):
        if args.state is None or record.status() == args.state:
            yield record


def _vendor(record: Record) -> str:
    return _vendor_of(record.key.identity)


@functools.lru_cache(maxsize=64)
def _vendor_of(identity: str) -> str:
    try:
        vendor = json.loads(identity).get("vendor")
    except (ValueError, AttributeError):
        vendor = None
    return vendor if isinstance(vendor, str) else identity


@functools.lru_cache(maxsize=64)
def _identity_of(identity: str) -> dict[str, Any]:
    parsed = json.loads(identity)
    return parsed if isinstance(parsed, dict) else {"identity": parsed}


def _written(stdout: TextIO, lines: Iterator[str]) -> None:
    """Write ``lines`` in batches: one write per line costs more than building it, unbuffered."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= _PAGE:
            stdout.write("".join(batch))
            batch.clear()
    if batch:
        stdout.write("".join(batch))


def _message(record: Record) -> str:
    if record.result is not None:
        return record.result.message or ""
    if isinstance(record.error, InviteError):
        return f"{type(record.error).__name__}: {record.error.message}"
    return ""


_HEADERS: Final = ("run", "vendor", "user_id", "state", "updated", "claims", "message")


class _Counted:
    """The rows of ``records`` for a table, counting records and unknown ones on the way."""

    def __init__(self, records: Iterator[Record]) -> None:
        self.records = records
        self.total = 0
        self.unknown = 0
        self.now = time.time()

    def __iter__(self) -> Iterator[list[str]]:
        for r in self.records:
            self.total += 1
            self.unknown += r.status() == "unknown"
            yield [
                r.key.run,
                _vendor(r),
                r.key.user_id,
                _reads(r, self.now),
                _when(r.updated_at),
                str(r.claims),
                _message(r),
            ]


def _show(ledger: Ledger, args: argparse.Namespace, stdout: TextIO) -> int:
    """A table of the selected records: drawn whole when they fit in one page, otherwise in
    columns as wide as the first page's, streamed (memory stays flat, however many there are)."""
    if getattr(args, "user", None) is not None:
        return show_user(ledger, args, stdout)
    rows = _Counted(_selected(ledger, args))
    stream = iter(rows)
    page = list(itertools.islice(stream, _PAGE))
    if len(page) < _PAGE:
        if page:
            table(stdout, _HEADERS, page, right={5})
    else:
        widths = [max(len(h), *(len(row[i]) for row in page)) for i, h in enumerate(_HEADERS)]
        stdout.write(_line(_HEADERS, widths) + "\n" + "  ".join("-" * w for w in widths) + "\n")
        _written(stdout, (_line(row, widths) + "\n" for row in itertools.chain(page, stream)))
    stdout.write(f"{rows.total} records, {rows.unknown} unknown\n")
    if rows.unknown:
        stdout.write(
            "unknown: the email may have gone out. Check each, then settle it with: "
            f"invites ledger settle {args.shown} USER_ID --as sent|failed\n"
        )
    return EXIT_OK


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = [
        cell.rjust(widths[i]) if i == 5 else cell.ljust(widths[i]) for i, cell in enumerate(cells)
    ]
    return "  ".join(parts).rstrip()


def export_record(record: Record, now: float) -> dict[str, Any]:
    """One record as a JSON-ready object: every stored field, and how it reads."""
    error = record.error
    return {
        "run": record.key.run,
        "identity": dict(_identity_of(record.key.identity)),
        "user_id": record.key.user_id,
        "state": record.state,
        "reads": record.status(),
        "in_flight": record.in_flight(now),
        "owner": record.owner,
        "lease_until": _when(record.lease_until),
        "claims": record.claims,
        "result": None if record.result is None else _result(record.result),
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "message": error.message if isinstance(error, InviteError) else str(error),
            "status_code": getattr(error, "status_code", None),
        },
        "created_at": _when(record.created_at),
        "updated_at": _when(record.updated_at),
        "claimed_at": None if record.claimed_at is None else _when(record.claimed_at),
        "budget_overridden": record.budget_overridden,
    }


def _result(result: ResendResult) -> dict[str, Any]:
    return {
        "message": result.message,
        "status_code": result.status_code,
        "invitation_status": result.invitation_status,
        "request_id": result.request_id,
    }


def _export(ledger: Ledger, args: argparse.Namespace, stdout: TextIO) -> int:
    now = time.time()
    dumps = json.dumps
    records = _selected(ledger, args)
    _written(stdout, (dumps(export_record(r, now), ensure_ascii=False) + "\n" for r in records))
    return EXIT_OK


def _settle(ledger: Ledger, args: argparse.Namespace, stdout: TextIO) -> int:
    matches = user_records(ledger, args)
    if not matches:
        where = f" in run {args.run!r}" if args.run is not None else ""
        raise UsageError(f"{args.shown}: no record of user {args.user_id!r}{where}")
    if len(matches) > 1:
        runs = ", ".join(sorted({f"{r.key.run!r} ({_vendor(r)})" for r in matches}))
        raise UsageError(
            f"{args.shown}: user {args.user_id!r} has {len(matches)} records ({runs}); "
            "choose one with --run"
        )
    (record,) = matches
    note = f"settled by hand as {args.state}" + (f": {args.note}" if args.note else "")
    if args.state == "sent":
        result = ResendResult(provider=_vendor(record), user_id=record.key.user_id, message=note)
        ledger.settle(record.key, "sent", owner=None, result=result)
    else:
        error = InviteError(note, provider=_vendor(record), user_id=record.key.user_id)
        ledger.settle(record.key, "failed", owner=None, error=error)
    was = _reads(record, time.time())
    stdout.write(f"{record.key.user_id} (run {record.key.run!r}): {was} -> {args.state}\n")
    return EXIT_OK


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``invites ledger ACTION`` with parsed ``args``; returns the exit status."""
    actions = {"show": _show, "export": _export, "settle": _settle}
    action = actions.get(args.ledger_command)
    if action is None:  # pragma: no cover - argparse requires one of them
        return EXIT_USAGE
    target, provider = _target(args)
    args.shown = label(target)
    args.provider = provider
    reading = args.ledger_command != "settle"
    with open_target(target, must_exist=True, read_only=reading) as ledger:
        return action(ledger, args, stdout)


def backup(source: str, target: str, stdout: TextIO) -> int:
    """``invites ledger backup SRC DEST``: a complete copy of a SQLite ledger, safe while a run
    writes to it (SQLite's online backup), checked before it is reported done."""
    from ..ledger._sqlite_file import Untrusted, path_of
    from ..ledger._sqlite_file import backup as copy_ledger

    if "://" in source and not source.lower().startswith("sqlite://"):
        raise UsageError(f"{redact_url(source)}: backup copies a SQLite ledger only")
    try:
        source_path, target_path = path_of(source), path_of(target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not os.path.isfile(source_path):
        raise UsageError(f"{source_path}: no such ledger file")
    try:
        count = copy_ledger(source_path, target_path)
    except (Untrusted, FileExistsError) as exc:
        raise UsageError(f"{source_path}: {exc}") from None
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(f"{source_path} -> {target_path}: {type(exc).__name__}: {exc}") from None
    stdout.write(f"{target_path}: a checked copy of {source_path} ({count} records)\n")
    return EXIT_OK
