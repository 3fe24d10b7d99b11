"""The resend journal: one JSON line per outcome, appended and flushed as each completes.

A rerun with the same journal skips the invitees it already shows as sent or already verified,
and those whose outcome is unknown unless asked to retry them: no one gets the email twice
because a run was interrupted and started again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Final

__all__ = ["DONE", "Journal", "JournalError"]

#: Outcomes after which an invitee needs nothing more.
DONE: Final = frozenset({"sent", "already_verified"})


class JournalError(Exception):
    """The journal cannot be read or written."""


class Journal:
    """Read what earlier runs recorded in ``path``; append this run's outcomes to it.

    ``writable=False`` (a dry run) reads the journal, if any, and never creates or changes it.
    Unreadable lines (a write cut short by a crash) are reported through ``warn`` and ignored.
    """

    def __init__(
        self, path: str | Path, *, writable: bool = True, warn: Callable[[str], None]
    ) -> None:
        self.path = Path(path)
        # user id -> "sent" | "already_verified" | "unknown"; a later failure clears "unknown".
        self._state: dict[str, str] = {}
        self._file: IO[str] | None = None
        ends_with_newline = self._load(warn)
        if writable:
            try:
                self._file = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise JournalError(f"{self.path}: cannot write ({exc.strerror})") from None
            if not ends_with_newline:
                self._file.write("\n")  # keep a torn last line from swallowing the next record

    def _load(self, warn: Callable[[str], None]) -> bool:
        try:
            fh = self.path.open(encoding="utf-8", newline="")
        except FileNotFoundError:
            return True
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read ({exc.strerror})") from None
        last = "\n"
        with fh:
            try:
                for number, line in enumerate(fh, 1):
                    last = line
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        user_id, outcome = record["user_id"], record["outcome"]
                    except (ValueError, TypeError, KeyError):
                        warn(f"{self.path}: line {number} is unreadable and was ignored")
                        continue
                    if isinstance(user_id, str) and isinstance(outcome, str):
                        self._note(user_id, outcome)
            except UnicodeDecodeError as exc:
                raise JournalError(f"{self.path}: not valid UTF-8 ({exc.reason})") from None
        return last.endswith("\n")

    def _note(self, user_id: str, outcome: str) -> None:
        if self._state.get(user_id) in DONE:
            return
        if outcome in DONE or outcome == "unknown":
            self._state[user_id] = outcome
        else:
            self._state.pop(user_id, None)

    def prior(self, user_id: str) -> str | None:
        """What an earlier run recorded for ``user_id`` that may mean it must not be resent."""
        return self._state.get(user_id)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one outcome and flush it to the operating system."""
        if self._file is None:
            raise JournalError(f"{self.path}: opened read-only")
        try:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write ({exc.strerror})") from None
        self._note(record["user_id"], record["outcome"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
