"""What ``invites resend`` reports: one JSON line per outcome, and the summary on stderr."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, TextIO

import attrs

from ..bulk import Outcome
from ..errors import InviteError
from .display import table

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
        "user_id": outcome.input_id,  # as its row wrote it
        "outcome": outcome.status,
        "error": type(error).__name__ if error is not None else None,
        "message": message,
        "status_code": status_code,
    }


@attrs.define
class Tally:
    """What a run counted: outcomes by (outcome, error class), invitees the journal skipped by
    their recorded outcome, repeated rows, and what a dry run would send."""

    counts: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    skipped: Counter[str] = attrs.field(factory=Counter)
    duplicates: int = 0
    would_send: int = 0
    #: Invitees the per-user budget skipped (nothing sent: emailed recently by some run).
    too_soon: int = 0

    def _write_dry_run(self, stderr: TextIO, *, invalid: int) -> None:
        parts = [f"{self.would_send} to resend", f"{invalid} invalid"]
        parts += [f"{n} skipped (journal: {status})" for status, n in self.skipped.items()]
        if self.too_soon:
            parts.append(f"{self.too_soon} skipped (per-user budget)")
        if self.duplicates:
            parts.append(f"{self.duplicates} repeated")
        stderr.write(f"invites: dry run, nothing sent: {', '.join(parts)}\n")

    def write(self, stderr: TextIO, elapsed: float, *, dry_run: bool) -> None:
        """The summary a person reads on stderr after the run."""
        totals = Counter[str]()
        for (outcome, _), count in self.counts.items():
            totals[outcome] += count
        if dry_run:
            self._write_dry_run(stderr, invalid=totals["failed"])
            return
        counted = Counter(
            {(outcome, error or "-"): n for (outcome, error), n in self.counts.items()}
        )
        counted.update({(status, "skipped (journal)"): n for status, n in self.skipped.items()})
        if self.too_soon:
            counted["failed", "ResendTooSoon: skipped (per-user budget)"] = self.too_soon
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
        skipped = sum(self.skipped.values()) + self.too_soon
        if skipped - self.too_soon:
            parts.append(f"{skipped - self.too_soon} skipped (journal)")
        if self.too_soon:
            parts.append(f"{self.too_soon} skipped (per-user budget)")
        if self.duplicates:
            parts.append(f"{self.duplicates} repeated rows")
        stderr.write(
            f"invites: {done + skipped} invitees in {elapsed:.1f}s{rate}: {', '.join(parts)}\n"
        )
        if self.skipped["unknown"]:
            stderr.write(
                f"invites: {self.skipped['unknown']} invitees with an unknown outcome were "
                "skipped: check them (invites ledger show --state unknown), then settle them "
                "(invites ledger settle) or resend with --retry-unknown\n"
            )
        if self.too_soon:
            stderr.write(
                f"invites: {self.too_soon} invitees were emailed within per_user_limit's window "
                "(by this or another run) and were not sent again; see when with "
                "invites ledger show --user ID, or send anyway with --ignore-budget\n"
            )
        stderr.flush()


def silence(stream: TextIO) -> None:
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
