"""Personal data must never reach a log line: the one scrubber every log passes through."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{20,}"), "<token>"),
    (
        re.compile(r"(?<![0-9])\+?[78][\s(-]*7\d{2}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?![0-9])"),
        "<phone>",
    ),
    (re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])"), "<iin>"),
    (re.compile(r"(?<![0-9.])-?\d{1,3}\.\d{4,}(?![0-9])"), "<coord>"),
)


def scrub(text: str) -> str:
    """Replace bot tokens, phone numbers, IIN/BIN-like numbers and coordinates."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
