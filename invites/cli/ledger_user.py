"""``invites ledger show FILE --user ID``: one user's resends across every run, with their times.

What the per-user budget (``per_user_limit``) counts: a record that reads ``sent`` or ``unknown``
(an intent too: its email may have gone), at the time it was claimed; ``already_verified`` and
``failed`` records (a budget's refusal included) are listed but do not count.
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
from datetime import UTC, datetime
from typing import TextIO

from .._protocol import InviteProvider
from .._settings.identity import canonical_user_id
from ..errors import InviteError, ResendTooSoon
from ..ledger import Ledger, Record, provider_identity
from ..ledger._budget import COUNTED, budget_of
from .common import EXIT_OK
from .display import table

__all__ = ["show_user", "user_records", "would_refuse"]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def user_records(ledger: Ledger, args: argparse.Namespace, limit: int | None = 20) -> list[Record]:
    """The records of ``args.user_id`` (at most ``limit``): as written, else (a UUID) in its
    canonical lower case."""
    user_id = args.user_id
    if args.provider is not None:
        user_id = canonical_user_id(args.provider, user_id)
    matches = list(itertools.islice(ledger.records(run=args.run, user_id=user_id), limit))
    if not matches and _UUID.fullmatch(user_id) and user_id.lower() != user_id:
        lower = ledger.records(run=args.run, user_id=user_id.lower())
        matches = list(itertools.islice(lower, limit))
    return matches


def _sent_at(record: Record) -> float:
    """When the record's resend was claimed (a record from before the budget: last written)."""
    return record.updated_at if record.claimed_at is None else record.claimed_at


def _note(record: Record) -> str:
    if record.budget_overridden:
        return "sent over the budget (--ignore-budget)"
    if isinstance(record.error, ResendTooSoon):
        return "refused by the budget: nothing sent"
    if isinstance(record.error, InviteError):
        return f"{type(record.error).__name__}: {record.error.message}"
    if record.result is not None:
        return record.result.message or ""
    return ""


def _records(ledger: Ledger, user_id: str, args: argparse.Namespace) -> list[Record]:
    """The user's records, as ``ledger show`` selects them (``--run``, ``--state``), oldest
    send first; the id is looked up as ``invites ledger settle`` looks it up (canonical)."""
    selected = argparse.Namespace(**{**vars(args), "user_id": user_id})
    records = [
        record
        for record in user_records(ledger, selected, limit=None)
        if args.state is None or record.status() == args.state
    ]
    return sorted(records, key=_sent_at)


def show_user(ledger: Ledger, args: argparse.Namespace, stdout: TextIO) -> int:
    """A table of the user's records, oldest send first, and how many count as sends."""
    user_id: str = args.user
    now = time.time()
    records = _records(ledger, user_id, args)
    rows = []
    for record in records:
        counts = record.state in COUNTED
        reads = record.status() + (" (in flight)" if record.in_flight(now) else "")
        when = datetime.fromtimestamp(_sent_at(record), UTC).isoformat(timespec="seconds")
        rows.append([when, record.key.run, reads, "yes" if counts else "no", _note(record)])
    if rows:
        table(stdout, ["when (UTC)", "run", "state", "counts", "note"], rows)
    sends = sum(1 for record in records if record.state in COUNTED)
    stdout.write(
        f"user {user_id}: {len(records)} records, {sends} of them sends (sent or unknown) "
        "that per_user_limit counts\n"
    )
    return EXIT_OK


def would_refuse(ledger: Ledger, provider: InviteProvider, user_id: str) -> bool:
    """Dry run: whether the provider's ``per_user_limit`` would refuse ``user_id`` now, by the
    ledger's records of every run (this process's clock)."""
    limit = getattr(getattr(provider, "settings", None), "per_user_limit", None)
    budget = budget_of(limit) if isinstance(limit, str) else None
    if budget is None:
        return False
    identity = provider_identity(provider)
    sends = [
        _sent_at(record)
        for record in ledger.records(user_id=user_id)
        if record.key.identity == identity and record.state in COUNTED
    ]
    return budget.refusal(sends, time.time()) is not None
