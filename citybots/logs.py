"""Logging set-up: every line goes through the personal-data scrubber."""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

from services.privacy import scrub


class ScrubbingFormatter(logging.Formatter):
    """Formats as usual, then removes IINs, phones, coordinates and tokens.

    Scrubbing the finished line (message, arguments and traceback together) is
    what makes it hold for third-party loggers too: aiogram and asyncpg put raw
    values into exception texts.
    """

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class DemoteToDebug(logging.Filter):
    """Lowers a chatty library's INFO lines to DEBUG: APScheduler says "Running job ..."
    and "executed successfully" for every tick, aiogram "Update id=... is handled" for
    every update (venue scans by the thousand; the latency histogram has them), most of
    the console otherwise."""

    def __init__(self, *names: str) -> None:
        super().__init__()
        self.prefixes = tuple(names)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name.startswith(self.prefixes):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    """What Python would print for an exception nobody caught, through the scrubber: an
    asyncpg error's text carries the row's values (``DETAIL: Key (iin)=(...)``)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("citybots").critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def setup_logging(level: str = "INFO") -> None:
    """Every line to standard error through the scrubber: log records, warnings and the
    tracebacks of exceptions nobody caught (which Python would print around it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(DemoteToDebug("apscheduler", "aiogram.event"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
