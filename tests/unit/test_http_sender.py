"""The kept-alive JSON sender (flows/common/http.py) against a real HTTP server on
loopback: connections reused, answers read whatever their framing, a connection the
server dropped while idle replaced without sending twice, clear errors otherwise."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from citybots.embedded import free_port
from flows.common.http import BadResponse, KeptAliveSender, NotSent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler, *, keepalive_timeout: float = 75.0) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_requests_share_kept_alive_connections_and_get_their_own_answers() -> None:
    seen: list[tuple[str, object]] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.path, body))
        await asyncio.sleep(0.01)
        return web.json_response({"ok": True, "result": body})

    async with serving(echo) as origin:
        sender = KeptAliveSender(origin, connections=4)
        for n in range(5):
            status, answer = await sender.post("/botT/sendMessage", json.dumps({"n": n}).encode())
            assert (status, json.loads(answer)["result"]) == (200, {"n": n})
        assert sender.opened == 1
        answers = await asyncio.gather(
            *(sender.post("/botT/sendMessage", json.dumps({"n": n}).encode()) for n in range(40))
        )
        assert [json.loads(body)["result"]["n"] for _, body in answers] == list(range(40))
        assert sender.opened <= 4
        await sender.close()
    assert len(seen) == 45
    assert seen[0] == ("/botT/sendMessage", {"n": 0})


async def test_a_connection_the_server_closes_is_not_used_again() -> None:
    async def closing(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True}, headers={"Connection": "close"})

    async with serving(closing) as origin:
        sender = KeptAliveSender(origin)
        for _ in range(3):
            assert (await sender.post("/x", b"{}"))[0] == 200
        assert sender.opened == 3
        await sender.close()


async def test_an_idle_connection_the_server_dropped_is_replaced_and_nothing_sent_twice() -> None:
    served = 0

    async def counting(request: web.Request) -> web.Response:
        nonlocal served
        await request.read()
        served += 1
        return web.json_response({"ok": True})

    async with serving(counting, keepalive_timeout=0.2) as origin:
        sender = KeptAliveSender(origin)
        assert (await sender.post("/x", b"{}"))[0] == 200
        await asyncio.sleep(0.6)  # the server closes the idle connection
        assert (await sender.post("/x", b"{}"))[0] == 200
        assert (sender.opened, served) == (2, 2)
        await sender.close()


async def test_chunked_answers_and_error_statuses_are_read() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path == "/busy":
            return web.json_response(
                {"ok": False, "error_code": 429, "parameters": {"retry_after": 3}}, status=429
            )
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"ok":', b" true, ", b'"result": "' + b"x" * 5000 + b'"}'):
            await response.write(part)
        await response.write_eof()
        return response

    async with serving(chunked) as origin:
        sender = KeptAliveSender(origin)
        status, body = await sender.post("/chunks", b"{}")
        assert status == 200
        assert json.loads(body)["result"] == "x" * 5000
        status, body = await sender.post("/busy", b"{}")
        assert (status, json.loads(body)["parameters"]["retry_after"]) == (429, 3)
        assert sender.opened == 1
        await sender.close()


async def test_nothing_listening_is_not_sent_and_nonsense_is_a_bad_response() -> None:
    with pytest.raises(NotSent):
        await KeptAliveSender(f"http://127.0.0.1:{free_port()}").post("/x", b"{}")

    async def nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(nonsense, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(BadResponse):
            await KeptAliveSender(f"http://127.0.0.1:{port}").post("/x", b"{}")
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(ValueError, match="not an HTTP origin"):
        KeptAliveSender("ftp://example.org")
