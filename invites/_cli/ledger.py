"""``invites ledger show | export | settle``: what runs recorded, and settling unknown outcomes.

A record whose outcome is unknown (an intent with no outcome, or a lost answer) is never resent
by a rerun. A person checks it (the vendor's console, the user), then settles it: ``--as sent``
(it went out: never resent) or ``--as failed`` (it did not: the next rerun sends it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from ..errors import ConfigurationError, InviteError
from ..ledger import Ledger, Record, open_ledger
from ..models import ResendResult
from .common import EXIT_OK, EXIT_USAGE, UsageError
from .display import table

__all__ = ["run"]


def _open(path: str) -> Ledger:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such ledger file")
    try:
        return open_ledger(path)
    except (InviteError, ConfigurationError) as exc:
        raise UsageError(f"{path}: {exc}") from None


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _reads(record: Record, now: float) -> str:
    """How a record reads for a person: its state, an intent as unknown, in flight or not."""
    if record.state == "intent":
        if record.in_flight(now):
            return f"unknown (in flight until {_when(record.lease_until)})"
        return "unknown (no outcome recorded)"
    return record.state


def _selected(ledger: Ledger, args: argparse.Namespace) -> list[Record]:
    return [
        record
        for record in ledger.records(run=args.run)
        if args.state is None or record.status() == args.state
    ]


def _vendor(record: Record) -> str:
    try:
        vendor = json.loads(record.key.identity).get("vendor")
    except (ValueError, AttributeError):
        vendor = None
    return vendor if isinstance(vendor, str) else record.key.identity


def _message(record: Record) -> str:
    if record.result is not None:
        return record.result.message or ""
    if isinstance(record.error, InviteError):
        return f"{type(record.error).__name__}: {record.error.message}"
    return ""


def _show(ledger: Ledger, args: argparse.Namespace, stdout: TextIO) -> int:
    if getattr(args, "user", None) is not None:
        from .ledger_user import show_user

        return show_user(ledger, args, stdout)
    now = time.time()
    records = _selected(ledger, args)
    rows = [
        [
            r.key.run,
            _vendor(r),
            r.key.user_id,
            _reads(r, now),
            _when(r.updated_at),
            str(r.claims),
            _message(r),
        ]
        for r in records
    ]
    if rows:
        headers = ["run", "vendor", "user_id", "state", "updated", "claims", "message"]
        table(stdout, headers, rows, right={5})
    unknown = sum(1 for r in records if r.status() == "unknown")
    stdout.write(f"{len(records)} records, {unknown} unknown\n")
    if unknown:
        stdout.write(
            "unknown: the email may have gone out. Check each, then settle it with: "
            f"invites ledger settle {args.file} USER_ID --as sent|failed\n"
        )
    return EXIT_OK


def export_record(record: Record, now: float) -> dict[str, Any]:
    """One record as a JSON-ready object: every stored field, and how it reads."""
    error = record.error
    return {
        "run": record.key.run,
        "identity": json.loads(record.key.identity),
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
    for record in _selected(ledger, args):
        stdout.write(json.dumps(export_record(record, now), ensure_ascii=False) + "\n")
    return EXIT_OK


def _settle(ledger: Ledger, args: argparse.Namespace, stdout: TextIO) -> int:
    matches = list(ledger.records(run=args.run, user_id=args.user_id))
    if not matches:
        where = f" in run {args.run!r}" if args.run is not None else ""
        raise UsageError(f"{args.file}: no record of user {args.user_id!r}{where}")
    if len(matches) > 1:
        runs = ", ".join(sorted({f"{r.key.run!r} ({_vendor(r)})" for r in matches}))
        raise UsageError(
            f"{args.file}: user {args.user_id!r} has {len(matches)} records ({runs}); "
            "choose one with --run"
        )
    (record,) = matches
    note = f"settled by hand as {args.state}" + (f": {args.note}" if args.note else "")
    if args.state == "sent":
        result = ResendResult(provider=_vendor(record), user_id=args.user_id, message=note)
        ledger.settle(record.key, "sent", owner=None, result=result)
    else:
        error = InviteError(note, provider=_vendor(record), user_id=args.user_id)
        ledger.settle(record.key, "failed", owner=None, error=error)
    was = _reads(record, time.time())
    stdout.write(f"{args.user_id} (run {record.key.run!r}): {was} -> {args.state}\n")
    return EXIT_OK


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``invites ledger ACTION`` with parsed ``args``; returns the exit status."""
    actions = {"show": _show, "export": _export, "settle": _settle}
    action = actions.get(args.ledger_command)
    if action is None:  # pragma: no cover - argparse requires one of them
        return EXIT_USAGE
    with _open(args.file) as ledger:
        return action(ledger, args, stdout)
