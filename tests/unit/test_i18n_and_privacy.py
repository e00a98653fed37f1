import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from citybots.logs import ScrubbingFormatter
from presentation.i18n import LANGUAGES, pick_language
from presentation.keys import input_error
from services.privacy import scrub


def test_every_validation_error_has_a_message() -> None:
    from services import validation

    source = Path(validation.__file__).read_text(encoding="utf-8")
    codes = set(re.findall(r'InvalidInput\(f?"([a-z_.{}]+)"\)', source))
    expanded = set()
    for code in codes:
        if code.startswith("{kind}"):
            expanded |= {code.replace("{kind}", kind) for kind in ("iin", "bin")}
        else:
            expanded.add(code)
    for code in expanded:
        for lang in LANGUAGES:
            assert input_error(lang, code)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [(("kk",), "kk"), (("ru-RU",), "ru"), (("de", "en"), "en"), ((None,), "ru"), (("uk",), "ru")],
)
def test_language_is_picked_from_what_telegram_sends(
    candidates: tuple[str | None, ...], expected: str
) -> None:
    assert pick_language(*candidates, default="ru") == expected


def test_personal_data_is_scrubbed_from_log_lines() -> None:
    line = scrub(
        "iin=791028302728 phone=+7 701 123 45 67 alt=87011234567 at 43.238949,76.889709 "
        "token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw update 12345"
    )
    for secret in (
        "791028302728",
        "701 123 45 67",
        "87011234567",
        "43.238949",
        "76.889709",
        "AAHdqTcv",
    ):
        assert secret not in line
    assert "update 12345" in line


def test_every_form_the_code_accepts_is_scrubbed() -> None:
    from services.validation import parse_iin, parse_phone

    iins = ("791028302728", "791028 302728", "7910 2830 2728", "7910-2830-2728")
    phones = (
        "+77019998877",
        "77019998877",
        "87019998877",
        "7019998877",
        "8 701 999 88 77",
        "+7 (701) 999-88-77",
        "8(701)9998877",
        "701 999 88 77",
    )
    for iin in iins:
        assert parse_iin(iin).value == "791028302728"
        assert scrub(f"typed {iin}.") == "typed <iin>."
    for phone in phones:
        assert parse_phone(phone) == "+77019998877"
        assert scrub(f"phone={phone};") == "phone=<phone>;"
    assert scrub("at lat:43.2568 lon=76.91235") == "at lat:<coord> lon=<coord>"
    # What must stay readable: clock times, durations, ids, dates.
    kept = "2026-11-23 03:27:19.933123 took 12.5 ms, update 123456789, 2026-11-23T09:00"
    assert scrub(kept) == kept


def test_an_iin_inside_a_longer_run_of_digits_is_masked_too() -> None:
    for line in (
        "row 0791028302728",
        "ids 791028302728123456 and x1791028302728y",
        "file report-20261206791028302728.csv",
    ):
        scrubbed = scrub(line)
        assert "791028302728" not in scrubbed
        assert "<iin>" in scrubbed
    assert scrub("update 123456789012") == "update <iin>"


def test_the_log_formatter_scrubs_arguments_and_tracebacks() -> None:
    formatter = ScrubbingFormatter("%(message)s")
    try:
        raise ValueError("bad iin 061211600012")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "user %s", ("791028302728",), sys.exc_info()
        )
    out = formatter.format(record)
    assert "791028302728" not in out
    assert "061211600012" not in out
    assert "<iin>" in out


@contextlib.contextmanager
def _logging_set_up(level: str) -> Iterator[None]:
    """The application's logging (``setup_logging``) for the block; the root logger's
    handlers and level and the exception hooks as they were afterwards."""
    import sys
    import threading

    from citybots.logs import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    try:
        setup_logging(level)
        yield
    finally:
        root.handlers[:], saved_level, sys.excepthook, threading.excepthook = saved
        root.setLevel(saved_level)
        logging.captureWarnings(False)


def test_warnings_and_uncaught_exceptions_are_scrubbed_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys
    import warnings

    with _logging_set_up("INFO"):
        warnings.warn("odd value 791028302728", UserWarning, stacklevel=1)
        try:
            raise RuntimeError("DETAIL:  Key (phone)=(+77019998877) already exists.")
        except RuntimeError as error:
            sys.excepthook(RuntimeError, error, error.__traceback__)
    err = capsys.readouterr().err
    assert "uncaught exception" in err
    assert "Key (phone)=(<phone>)" in err
    assert "odd value <iin>" in err
    assert "791028302728" not in err
    assert "77019998877" not in err


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_scheduler_lines_are_logged_at_debug(
    level: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with _logging_set_up(level):
        logging.getLogger("apscheduler.executors.default").info('Job "tick" executed successfully')
        logging.getLogger("apscheduler.scheduler").warning("a job was missed")
        logging.getLogger("citybots").info("started")
    err = capsys.readouterr().err
    assert "a job was missed" in err
    assert "started" in err
    if level == "INFO":
        assert "executed successfully" not in err
    else:
        assert "DEBUG   apscheduler.executors.default: Job" in err
