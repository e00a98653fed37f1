"""Files people open in spreadsheets: cells that would run as formulas are neutralised."""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> str:
    """A cell that Excel or LibreOffice will show as text, never evaluate."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
