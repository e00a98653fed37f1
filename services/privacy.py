"""Personal data must never reach a log line: the one scrubber every log passes through."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{20,}"), "<token>"),
    # A longer run of digits may hold a twelve-digit IIN anywhere inside it (glued to an
    # id, a file name's counter, a CSV line without separators): the whole run goes.
    (re.compile(r"[0-9]{13,}"), "<iin>"),
    # A Kazakhstan mobile number in every form parse_phone accepts: +7, 7, 8 or nothing in
    # front (so ten digits starting with 7 too), spaces, dashes and brackets between groups.
    (
        re.compile(
            r"(?<![0-9])(?:\+?[78][\s(-]*)?\(?7\d{2}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?![0-9])"
        ),
        "<phone>",
    ),
    # Twelve digits, also typed in groups ("7910 2830 2728", "791028-302728"), as
    # parse_iin accepts them.
    (re.compile(r"(?<![0-9])[0-9](?:[\s-]?[0-9]){11}(?![0-9])"), "<iin>"),
    # A coordinate to four or more decimals; not a clock's seconds ("09:27:16.123456").
    (re.compile(r"(?<![0-9.])(?<![0-9]:)-?\d{1,3}\.\d{4,}(?![0-9])"), "<coord>"),
)


def scrub(text: str) -> str:
    """Replace bot tokens, phone numbers, IIN/BIN-like numbers and coordinates."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
