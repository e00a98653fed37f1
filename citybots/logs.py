"""Logging set-up: every line goes through the personal-data scrubber."""

from __future__ import annotations

import logging
import sys

from services.privacy import scrub


class ScrubbingFormatter(logging.Formatter):
    """Formats as usual, then removes IINs, phones, coordinates and tokens.

    Scrubbing the finished line (message, arguments and traceback together) is
    what makes it hold for third-party loggers too: aiogram and asyncpg put raw
    values into exception texts.
    """

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
