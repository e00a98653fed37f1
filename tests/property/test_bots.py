"""Every bot end to end through the sandbox, on hostile updates from strangers: random
texts, ``/start <random payload>``, contacts (someone else's, odd numbers), locations (out
of range, far away, NaN when the sandbox carries it). Each update is handled without an
unhandled exception (nothing logged at ERROR) and the bot answers something, never the
"something went wrong" notice."""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bots.sandbox import Sandbox
from bots.sandbox.server import SandboxBot
from citybots.platform import Platform
from citybots.settings import BOT_NAMES
from presentation.i18n import LANGUAGES, text
from tests.property import cases
from tests.property.strategies import hostile_text

INTERNAL = {text(lang, "errors.internal") for lang in LANGUAGES}
PREFIXES = ("in_", "out_", "q_", "doc_", "staff_", "off_", "cp_")


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[Errors]:
    handler = Errors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


COORDINATE = st.one_of(
    st.floats(-1000, 1000, allow_nan=False),
    st.sampled_from([0.0, 90.0, -90.0, 180.0, -180.0, 1e308, -1e308]),
    st.just(math.nan),
    st.just(math.inf),
)
UPDATES = st.one_of(
    st.builds(lambda t: {"text": t}, hostile_text(min_size=1, max_size=4096)),
    st.builds(
        lambda p: {"text": "/start " + p},
        st.one_of(
            hostile_text(min_size=1, max_size=80),
            st.tuples(st.sampled_from(PREFIXES), st.text("AZaz09_-", max_size=64)).map("".join),
        ),
    ),
    st.builds(
        lambda phone, own: {"contact": {"phone_number": phone, "own": own}},
        st.one_of(hostile_text(min_size=1, max_size=30), st.just("+77012345678")),
        st.booleans(),
    ),
    st.builds(
        lambda lat, lon, accuracy, live, forwarded: {
            "location": {
                "latitude": lat,
                "longitude": lon,
                **({"horizontal_accuracy": accuracy} if accuracy is not None else {}),
                **({"live_period": live} if live is not None else {}),
            },
            "forwarded": forwarded,
        },
        COORDINATE,
        COORDINATE,
        st.one_of(st.none(), st.floats(0, 1500)),
        st.one_of(st.none(), st.sampled_from([60, 900, 86400, 0x7FFFFFFF]), st.integers()),
        st.booleans(),
    ),
)


LANGS = st.sampled_from([*LANGUAGES, "de"])
# Inputs per hypothesis example in the fuzz run: each is a stranger's chat of its own, all
# sent at once, so that a case costs the bot's work rather than a round trip's wait. The
# user's side is the sandbox in process (the bots still take each update over getUpdates
# and answer over the Bot API, as from Telegram).
BATCH = 50
NAME = "bot end to end: {}"
REPLY_WAIT = 10.0


async def _exchange(
    sandbox: Sandbox, bot: SandboxBot, update: dict[str, Any], lang: str
) -> list[dict[str, Any]] | None:
    """A new stranger sends the update; the bot's replies, or None if the sandbox refused
    the update (a value Telegram could not send)."""
    user = sandbox.create_user("Fuzz", lang)
    try:
        since = await sandbox.user_sends_update(bot, user, update)
    except ValueError:
        return None
    try:
        return await asyncio.wait_for(sandbox.wait_for_replies(bot, user, since), REPLY_WAIT)
    except TimeoutError:
        raise AssertionError(f"{bot.name} did not answer in {REPLY_WAIT:.0f} s") from None


@pytest.mark.parametrize("bot", BOT_NAMES)
@cases.examples(
    ci=10,
    fuzz=int(os.environ.get("FUZZ_BOT_EXAMPLES", "10000")),
    batch=BATCH,
    scaled="FUZZ_BOT_EXAMPLES" not in os.environ,
)
@given(updates=cases.batches(st.tuples(UPDATES, LANGS), fuzz=BATCH))
@example(updates=[({"text": "/start in_\x00"}, "ru"), ({"text": "\x00"}, "en")])
@example(updates=[({"contact": {"phone_number": "+77012345678", "own": False}}, "kk")])
@example(
    updates=[
        ({"location": {"latitude": 91.0, "longitude": 0.0}}, "en"),
        ({"location": {"latitude": -33.9, "longitude": 151.2}}, "en"),
    ]
)
async def test_every_bot_answers_any_update_from_a_stranger_without_failing(
    platform: Platform, errors: Errors, bot: str, updates: list[tuple[dict[str, Any], str]]
) -> None:
    cases.enter(NAME.format(bot))
    sandbox = platform.sandbox
    assert sandbox is not None
    target = sandbox.bot_named(bot)
    assert target is not None
    seen = len(errors.records)
    answers = await asyncio.gather(
        *(_exchange(sandbox, target, update, lang) for update, lang in updates),
        return_exceptions=True,
    )
    failed = [
        (u, repr(a)) for u, a in zip(updates, answers, strict=True) if isinstance(a, Exception)
    ]
    assert not failed, failed
    logged = [r.getMessage() for r in errors.records[seen:]]
    assert not logged, (logged, updates)
    checked = 0
    for (update, _lang), replies in zip(updates, answers, strict=True):
        if replies is None:
            continue
        assert isinstance(replies, list)
        for reply in replies:
            assert reply.get("text") not in INTERNAL, (update, reply.get("text"))
        checked += 1
    cases.tick(NAME.format(bot), checked)
