"""XLSX files for ``import_file`` and ``export_file``, through openpyxl in its streaming
modes: a read-only workbook read row by row, a write-only workbook written row by row (each
sheet goes to a temporary file until the workbook is saved), so neither holds a whole sheet.

Reading: the first row is the header (every name present and distinct), wholly empty rows
are skipped, cells keep their types (numbers, booleans, text, ``datetime``; a date-only
format gives a ``date``, a time format a ``time``; formulas give their cached value, or
None when the file has none). Writing: a header row, then the values with their types;
datetimes with a time zone in UTC (Excel has none), dicts and lists as JSON text, and text
that starts with ``=`` stays text (never a live formula).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import IO, Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import IllegalCharacterError

from ..errors import ValidationError

_TIME_CODES = ("h", "s")  # a number format with hours or seconds shows a time of day


def read_rows(stream: IO[bytes], name: str, sheet: str | None) -> Iterator[dict[str, Any]]:
    """The rows of ``sheet`` (default: the first) of the workbook in ``stream``, as dicts
    keyed by the header row; ValidationError naming the file, sheet, row and column."""
    from openpyxl import load_workbook

    try:
        # data_only: a formula cell gives the value Excel saved with it, never its text
        book = load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl errors alike: not a workbook
        raise _invalid(f"{name}: not a valid xlsx file ({type(exc).__name__}: {exc})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            known = ", ".join(repr(s) for s in book.sheetnames) or "none"
            raise _invalid(f"{name}: no sheet {sheet!r} (sheets: {known})")
        if not book.sheetnames:
            raise _invalid(f"{name}: the workbook has no sheet")
        title = sheet if sheet is not None else book.sheetnames[0]
        yield from _sheet_rows(book[title].iter_rows(), f"{name}, sheet {title!r}")
    finally:
        book.close()  # read-only workbooks keep the zip open until closed


def _sheet_rows(rows: Iterator[tuple[Any, ...]], where: str) -> Iterator[dict[str, Any]]:
    header: list[str] | None = None
    width = top = 0
    for number, cells in enumerate(rows, start=1):
        values = [_date(c) if c.value.__class__ is datetime else c.value for c in cells]
        if values.count(None) + values.count("") == len(values):
            continue
        if header is None:
            header, top = _header(values, number, where), number
            width = len(header)
            continue
        if len(values) > width:
            for column in range(width, len(values)):
                if values[column] is not None and values[column] != "":
                    letter = get_column_letter(column + 1)
                    raise _invalid(
                        f"{where}, row {top} column {letter}: empty header "
                        f"(row {number} has a value under it)"
                    )
        elif len(values) < width:
            values += [None] * (width - len(values))
        yield dict(zip(header, values, strict=False))


def _header(values: list[Any], number: int, where: str) -> list[str]:
    while values and (values[-1] is None or values[-1] == ""):
        values.pop()  # sheets often report a few empty columns past the last one used
    names: list[str] = []
    for column, value in enumerate(values, start=1):
        letter = get_column_letter(column)
        text = "" if value is None else str(value).strip()
        if not text:
            raise _invalid(f"{where}, row {number} column {letter}: empty header")
        if text in names:
            first = get_column_letter(names.index(text) + 1)
            raise _invalid(
                f"{where}, row {number} column {letter}: duplicate header {text!r} "
                f"(also column {first})"
            )
        names.append(text)
    return names


def _date(cell: Any) -> Any:
    """A cell's datetime, or its date when it is midnight shown with a date-only format."""
    value = cell.value
    if value.time() == time(0):
        code = (getattr(cell, "number_format", None) or "").lower()
        if not any(c in code for c in _TIME_CODES):
            return value.date()
    return value


class SheetWriter:
    """One sheet of a write-only workbook (bounded memory): :meth:`append` rows of values,
    then :meth:`save`; ValidationError for a value xlsx cannot hold."""

    def __init__(self, sheet: str | None) -> None:
        from openpyxl import Workbook

        self.book = Workbook(write_only=True)
        self.ws = self.book.create_sheet(title=sheet or "Sheet1")

    def append(self, values: Iterable[Any]) -> None:
        """Write one row."""
        row = [_plain(self.ws, value) for value in values]
        try:
            self.ws.append(row)
        except IllegalCharacterError:
            bad = next(v for v in row if isinstance(v, str) and ILLEGAL_CHARACTERS_RE.search(v))
            shown = bad if len(bad) <= 40 else bad[:40] + "…"
            raise _invalid(f"{shown!r}: control characters cannot be written to xlsx") from None

    def save(self, target: IO[bytes]) -> None:
        """Write the workbook to ``target`` (once)."""
        self.book.save(target)

    def discard(self) -> None:
        """Drop an unfinished sheet (its run failed): close its writer, remove its
        temporary file (else both linger until the process ends)."""
        self.ws.close()
        writer = getattr(self.ws, "_writer", None)
        if writer is not None:
            writer.cleanup()


def _plain(ws: Any, value: Any) -> Any:
    """A value openpyxl writes as it is (most), or a cell that keeps ``=…`` text as text."""
    if isinstance(value, str):
        if value.startswith("="):
            from openpyxl.cell import WriteOnlyCell

            cell = WriteOnlyCell(ws, value)
            cell.data_type = "s"  # text from the data stays text, never a formula Excel runs
            return cell
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_default)
    if isinstance(value, int | float | Decimal | date | time) or value is None:
        return value
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _invalid(message: str) -> ValidationError:
    return ValidationError({"file": [message]})
