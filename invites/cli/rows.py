"""Invitees from command-line ids, CSV files and JSON Lines files, one row at a time.

A row that cannot become an :class:`~invites.Invitee` is a :class:`BadRow` naming where it was;
it never stops the reading. Only a file that cannot be read as a whole raises :class:`InputError`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, TypeAlias

import attrs

from ..errors import InvalidInvitee

if TYPE_CHECKING:
    import _csv
from ..models import Invitee

__all__ = ["FIELDS", "BadRow", "InputError", "InputFile", "Row", "Rows", "from_arguments"]

#: The columns (CSV) or keys (JSON Lines) an input row may have; only ``user_id`` is required.
FIELDS: Final = ("user_id", "email", "first_name", "last_name", "timezone", "user_type")

#: Suffixes of the supported input formats.
FORMATS: Final = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class InputError(Exception):
    """The input cannot be read at all (missing file, no ``user_id`` column, bad encoding)."""


@attrs.frozen
class Row:
    """An invitee read from ``where`` (``"line 7"``, ``"argument 2"``)."""

    where: str
    invitee: Invitee


@attrs.frozen
class BadRow:
    """A row that is not a usable invitee; ``user_id`` is the row's id when it had a string one."""

    where: str
    user_id: str | None
    problem: str


Rows: TypeAlias = Iterator[Row | BadRow]
_CsvReader: TypeAlias = "_csv.Reader"
Warn: TypeAlias = Callable[[str], None]


def parse(where: str, values: Mapping[str, object]) -> Row | BadRow:
    """The row's invitee, or why there is none. Empty strings count as absent."""
    raw_id = values.get("user_id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)  # JSON Lines may carry numeric ids
    shown = raw_id if isinstance(raw_id, str) and raw_id else None
    if raw_id is None or raw_id == "":
        return BadRow(where, None, "user_id is missing")
    fields: dict[str, object] = {"user_id": raw_id}
    for name in FIELDS[1:]:
        value = values.get(name)
        if value is not None and value != "":
            fields[name] = value
    try:
        return Row(where, Invitee(**fields))  # type: ignore[arg-type]
    except InvalidInvitee as exc:
        return BadRow(where, shown, exc.message)


def from_arguments(user_ids: Sequence[str]) -> Rows:
    """Rows for user ids given on the command line."""
    for index, user_id in enumerate(user_ids, 1):
        yield parse(f"argument {index}", {"user_id": user_id})


class InputFile:
    """A CSV (``.csv``) or JSON Lines (``.jsonl``, ``.ndjson``) file of invitees.

    Opening checks what can be checked up front (the file is readable, a CSV header names
    ``user_id``), so that a broken input stops the run before anything is sent. Rows are then
    read lazily by :meth:`rows`. Unknown columns or keys are reported once through ``warn`` and
    ignored.
    """

    def __init__(self, path: str | Path, *, warn: Warn) -> None:
        self.path = Path(path)
        self.format = FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            known = ", ".join(FORMATS)
            raise InputError(f"{self.path}: cannot tell the format from its name (use {known})")
        self._warn = warn
        self._warned: set[str] = set()
        try:
            # utf-8-sig: spreadsheet exports often start with a byte-order mark.
            self._file: IO[str] = self.path.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None
        self._columns: list[str] = []
        self._reader: _CsvReader | None = None
        if self.format == "csv":
            try:
                self._open_csv()
            except BaseException:
                self._file.close()
                raise

    def _open_csv(self) -> None:
        reader = csv.reader(self._file)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path}: line 1: unreadable header ({exc})") from None
        if header is None:
            return  # an empty file: no invitees
        columns = [column.strip() for column in header]
        if "user_id" not in columns:
            raise InputError(f"{self.path}: line 1: the header has no user_id column")
        repeated = sorted({c for c in columns if columns.count(c) > 1 and c})
        if repeated:
            raise InputError(f"{self.path}: line 1: repeated columns: {', '.join(repeated)}")
        self._note_unknown(columns)
        self._columns = columns
        self._reader = reader

    def _note_unknown(self, keys: Sequence[str]) -> None:
        unknown = [key for key in keys if key not in FIELDS and key not in self._warned]
        if unknown:
            self._warned.update(unknown)
            kind = "columns" if self.format == "csv" else "keys"
            self._warn(f"{self.path}: ignoring unknown {kind}: {', '.join(unknown)}")

    def rows(self) -> Rows:
        """Every row, lazily, with its line number."""
        try:
            if self.format == "csv":
                yield from self._csv_rows()
            else:
                yield from self._jsonl_rows()
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path}: not valid UTF-8 ({exc.reason})") from None

    def _csv_rows(self) -> Rows:
        reader = self._reader
        if reader is None:
            return
        start = reader.line_num + 1
        while True:
            where = f"line {start}"
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(where, None, f"unreadable CSV ({exc})")
                start = reader.line_num + 1
                continue
            start = reader.line_num + 1
            if not record:
                continue  # a blank line
            if len(record) != len(self._columns):
                yield BadRow(
                    where,
                    None,
                    f"has {len(record)} fields where the header has {len(self._columns)}",
                )
                continue
            yield parse(where, dict(zip(self._columns, record, strict=True)))

    def _jsonl_rows(self) -> Rows:
        for number, line in enumerate(self._file, 1):
            if not line.strip():
                continue
            where = f"line {number}"
            try:
                value = json.loads(line)
            except ValueError:
                yield BadRow(where, None, "not valid JSON")
                continue
            if not isinstance(value, dict):
                yield BadRow(where, None, f"expected a JSON object, got {type(value).__name__}")
                continue
            self._note_unknown(list(value))
            yield parse(where, value)

    def count(self) -> int:
        """About how many rows the file holds (non-blank lines, less a CSV header); cheap."""
        lines = 0
        with self.path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    lines += 1
        return max(0, lines - 1) if self.format == "csv" else lines

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
