"""Every bot end to end through the sandbox, on hostile updates from strangers: random
texts, ``/start <random payload>``, contacts (someone else's, odd numbers), locations (out
of range, far away, NaN when the sandbox carries it). Each update is handled without an
unhandled exception (nothing logged at ERROR) and the bot answers something, never the
"something went wrong" notice."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bots.sandbox.client import SandboxClient, SandboxError
from citybots.platform import Platform
from citybots.settings import BOT_NAMES
from flows.i18n import LANGUAGES, text
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


async def _send(sandbox: SandboxClient, bot: str, user_id: int, body: dict[str, Any]) -> None:
    await sandbox.request("POST", f"/bots/{bot}/users/{user_id}/send", json=body)


@pytest.mark.parametrize("bot", BOT_NAMES)
@cases.examples(
    ci=40,
    fuzz=int(os.environ.get("FUZZ_BOT_EXAMPLES", "10000")),
    scaled="FUZZ_BOT_EXAMPLES" not in os.environ,
)
@given(update=UPDATES, lang=st.sampled_from([*LANGUAGES, "de"]))
@example(update={"text": "/start in_\x00"}, lang="ru")
@example(update={"text": "\x00"}, lang="en")
@example(update={"contact": {"phone_number": "+77012345678", "own": False}}, lang="kk")
@example(update={"location": {"latitude": 91.0, "longitude": 0.0}}, lang="en")
@example(update={"location": {"latitude": -33.9, "longitude": 151.2}}, lang="en")
async def test_every_bot_answers_any_update_from_a_stranger_without_failing(
    platform: Platform, errors: Errors, bot: str, update: dict[str, Any], lang: str
) -> None:
    cases.tick(f"bot end to end: {bot}")
    async with SandboxClient(f"{platform.base_url}/sandbox") as sandbox:
        chat = await sandbox.chat(bot, first_name="Fuzz", language_code=lang)
        seen = len(errors.records)
        try:
            await _send(sandbox, bot, chat.user_id, update)
        except SandboxError:
            assume(False)  # the sandbox refused it (a value Telegram could not send)
        replies = await chat.replies(1, wait=10)
    logged = [r.getMessage() for r in errors.records[seen:]]
    assert not logged, logged
    for reply in replies:
        assert reply.get("text") not in INTERNAL, (update, reply.get("text"))
