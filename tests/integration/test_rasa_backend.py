"""NLU_BACKEND=rasa: texts go to the Rasa server's /model/parse; when it fails, is slow or
is down, the embedded classifier answers (a Rasa stand-in over HTTP plays the server:
Rasa itself needs Python < 3.11)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from citybots.embedded import free_port
from nlu.service import Nlu, load_or_train
from tests.sandbox_server import serve


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_or_train(tmp_path_factory.mktemp("nlu"))[0]


@pytest.fixture
async def rasa() -> AsyncIterator[tuple[str, dict[str, object]]]:
    behaviour: dict[str, object] = {"mode": "ok", "seen": []}

    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        behaviour["seen"].append(body["text"])  # type: ignore[union-attr]
        if behaviour["mode"] == "error":
            return web.Response(status=500)
        if behaviour["mode"] == "slow":
            await asyncio.sleep(2)
        return web.json_response(
            {
                "text": body["text"],
                "intent": {"name": "faq_vaccine", "confidence": 0.99},
                "intent_ranking": [{"name": "faq_vaccine", "confidence": 0.99}],
                "entities": [],
            }
        )

    app = web.Application()
    app.router.add_post("/model/parse", parse)
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}", behaviour


async def test_rasa_answers_when_it_can_and_the_embedded_model_otherwise(
    model,
    rasa: tuple[str, dict[str, object]],  # type: ignore[no-untyped-def]
) -> None:
    url, behaviour = rasa
    nlu = Nlu(model, backend="rasa", rasa_url=url, timeout=0.5)
    try:
        answer = await nlu.parse_async("what is covid")
        assert answer["intent"]["name"] == "faq_vaccine"  # Rasa's answer, passed through
        behaviour["mode"] = "error"
        assert (await nlu.parse_async("what is covid"))["intent"]["name"] == "faq_what_is_covid"
        behaviour["mode"] = "slow"
        assert (await nlu.parse_async("what is covid"))["intent"]["name"] == "faq_what_is_covid"
        assert behaviour["seen"] == ["what is covid"] * 3
    finally:
        await nlu.close()
    down = Nlu(model, backend="rasa", rasa_url=f"http://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        assert (await down.parse_async("what is covid"))["intent"]["name"] == "faq_what_is_covid"
    finally:
        await down.close()
