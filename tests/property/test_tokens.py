"""QR tokens and ``/start`` payloads: any text after ``/start`` is either a well-formed
token of the flow that owns its prefix or left alone, and looking a random token up
finds nothing without raising."""

from __future__ import annotations

import re

import pytest
from aiogram.types import Message
from hypothesis import example, given
from hypothesis import strategies as st

from citybots.wiring import Services
from flows.filters import StartPayload
from services.quarantine import QuarantineError
from services.venues import CodeState
from tests.property import cases
from tests.property.strategies import hostile_text

PREFIXES = ("in_", "out_", "q_", "doc_", "staff_", "off_", "cp_")
TOKENS = st.one_of(
    hostile_text(max_size=80),
    st.tuples(st.sampled_from(PREFIXES), hostile_text(max_size=70)).map("".join),
    st.tuples(
        st.sampled_from(PREFIXES),
        st.text("ABCxyz019_-", max_size=80),
    ).map("".join),
)


def _message(text: str) -> Message:
    return Message.model_validate(
        {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": False, "first_name": "A"},
            "text": text,
        }
    )


@cases.examples(ci=300)
@given(text=st.one_of(TOKENS.map(lambda t: "/start " + t), hostile_text(max_size=80)))
@example(text="/start in_\x00")
@example(text="/start in_" + "A" * 70)
@example(text="/start  q_abc ")
async def test_start_payload_filters_pass_only_well_formed_tokens_of_their_prefix(
    text: str,
) -> None:
    cases.tick("/start payload parsing")
    for prefix in PREFIXES:
        matched = await StartPayload(prefix)(_message(text))
        if matched is False:
            continue
        assert isinstance(matched, dict)
        payload = matched["payload"]
        assert payload.startswith(prefix)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", payload)


@cases.examples(ci=200)
@given(token=TOKENS)
@example(token="in_\x00")
@example(token="cp_" + "x" * 500)
async def test_looking_up_any_token_finds_nothing_without_raising(
    services: Services, token: str
) -> None:
    cases.tick("QR token / invite resolution")
    target = await services.venues.resolve(token)
    assert target.state is CodeState.UNKNOWN
    assert await services.checkpoints.by_token(token) is None
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token):  # the bot's filter lets only these by
        with pytest.raises(QuarantineError):
            await services.quarantine.case_by_invite(token)
