"""The dispatch systems' push API on hostile requests: every answer is JSON, never a 500;
a report always accounts for every item, each rejected one with its line and reason."""

from __future__ import annotations

import secrets

from aiohttp import ClientSession, DummyCookieJar
from hypothesis import example, given
from hypothesis import strategies as st

from citybots.platform import Platform
from tests.property import cases
from tests.property.strategies import hostile_text
from tests.property.test_web import BATCH, JSON_VALUES, _header, push_answer_is_clear, push_bodies

_KEYS: dict[str, str] = {}
CELLS = st.one_of(
    hostile_text(max_size=30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.none(),
    st.booleans(),
    st.just({"nested": [1]}),
)
CALLS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {
            "call_id": st.one_of(CELLS, st.text("AZ09", min_size=1, max_size=8)),
            "called_at": st.one_of(CELLS, st.just("2026-11-20T09:00:00+05:00")),
            "latitude": st.one_of(CELLS, st.just(43.25)),
            "longitude": st.one_of(CELLS, st.just(76.92)),
            "code": st.sampled_from(["J18.9", "U07.1", "I21", "", "\x00"]),
            "outcome": st.sampled_from(["on_site", "hospital", "refused", "☣"]),
        },
        optional={"hospital": CELLS, "placed_at": CELLS, "address": CELLS},
    ),
)
BODIES = push_bodies(CALLS, "calls")
AUTHS = st.one_of(st.just("valid"), st.none(), hostile_text(max_size=60))


@cases.examples(ci=40, batch=BATCH)
@given(pushes=cases.batches(st.tuples(BODIES, AUTHS), fuzz=BATCH))
@example(pushes=[(b'{"calls": "x"}', "valid"), (b'[{"call_id": 1e999}]', "valid")])
async def test_the_ambulance_push_api_answers_every_request_with_json_never_a_500(
    platform: Platform, pushes: list[tuple[bytes, str | None]]
) -> None:
    assert platform.services is not None
    if "key" not in _KEYS:
        _KEYS["key"] = await platform.services.ambulance.add_system(
            f"Fuzz 103 {secrets.token_hex(4)}"
        )

    async def push(request: tuple[bytes, str | None]) -> None:
        body, auth = request
        headers = {"Content-Type": "application/json"}
        if auth == "valid":
            headers["Authorization"] = f"Bearer {_KEYS['key']}"
        elif auth is not None:
            headers["Authorization"] = _header(auth)
        async with (
            ClientSession(cookie_jar=DummyCookieJar()) as http,
            http.post(
                f"{platform.base_url}/api/v1/ambulance-calls", data=body, headers=headers
            ) as answer,
        ):
            status, kind, text = answer.status, answer.content_type, await answer.text()
        push_answer_is_clear(status, kind, text)

    await cases.feed("ambulance push API (HTTP)", pushes, push)
