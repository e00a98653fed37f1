"""The web app against the attacks of issue 17 (section 2), over real HTTP and raw sockets:
an open redirect through ``next``, slow and idle connections, hostile input that used to
answer 500, the login throttle that must not lock the rightful user out, and /healthz
answering while a large import runs."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession, CookieJar, FormData

from citybots.platform import Platform

PASSWORD = "correct horse battery"


def _browser() -> ClientSession:
    """A client that keeps the panel's cookies for 127.0.0.1, as a browser does."""
    return ClientSession(cookie_jar=CookieJar(unsafe=True))


async def _user(platform: Platform, role: str) -> str:
    name = f"hard-{role.replace('_', '-')}-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, role, PASSWORD, actor="test")
    return name


async def _login_form(http: ClientSession, base: str, query: str = "") -> tuple[int, str]:
    async with http.get(f"{base}/login{query}") as page:
        return page.status, await page.text()


async def _log_in(
    http: ClientSession, base: str, username: str, password: str = PASSWORD, next_path: str = "/"
) -> tuple[int, str, str]:
    """(status, Location, page text) of a login attempt from this client."""
    _, page = await _login_form(http, base)
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = {"username": username, "password": password, "csrf": token.group(1), "next": next_path}
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as answer:
        return answer.status, answer.headers.get("Location", ""), await answer.text()


async def _csrf(http: ClientSession, base: str) -> str:
    async with http.get(f"{base}/") as home:
        found = re.search(r'name="csrf" value="([^"]+)"', await home.text())
    assert found is not None
    return found.group(1)


@pytest.fixture
async def fresh_window(platform: Platform) -> AsyncIterator[None]:
    """Tests of the session log in from one address: each of these starts with no
    failures counted, and leaves none behind."""
    async for key in platform.redis.scan_iter("panel-login:*"):
        await platform.redis.delete(key)
    yield
    async for key in platform.redis.scan_iter("panel-login:*"):
        await platform.redis.delete(key)


async def test_login_next_never_sends_the_browser_to_another_host(
    platform: Platform, fresh_window: None
) -> None:
    base = platform.base_url
    name = await _user(platform, "analyst")
    async with _browser() as http:
        # The attack of the issue: a tab after the slash, which browsers drop.
        status, page = await _login_form(http, base, "?next=%2F%09%2Fevil.example%2F")
        assert status == 200
        assert 'name="next" value="/"' in page
        # A vertical tab used to make aiohttp drop the connection.
        status, page = await _login_form(http, base, "?next=%2F%0B%2Fx")
        assert status == 200
        assert 'name="next" value="/"' in page
        status, location, _ = await _log_in(http, base, name, next_path="/\t/evil.example/")
        assert status == 303
        assert location == "/"
    async with _browser() as http:
        status, location, _ = await _log_in(http, base, name, next_path="/model?x=1")
        assert (status, location) == (303, "/model?x=1")
        assert urlsplit(location).netloc == ""


async def test_hostile_input_that_used_to_answer_500_gets_a_clear_400(
    platform: Platform, fresh_window: None
) -> None:
    admin = await _user(platform, "admin")
    base = platform.base_url
    async with _browser() as http:
        assert (await _log_in(http, base, admin))[0] == 303
        csrf = await _csrf(http, base)
        headers = {"X-CSRF-Token": csrf}
        async with http.get(f"{base}/venues?q=%00") as venues:
            assert venues.status == 400
            assert "NUL" in await venues.text()
        form = {"code": "47.11", "allowed": "1", "note": "a\x00b", "csrf": csrf}
        async with http.post(f"{base}/permits/activities", data=form, headers=headers) as note:
            assert note.status == 400
            assert "NUL" in await note.text()
        officer = {"officer": "12345678901234567890", "checkpoint": "1", "csrf": csrf}
        async with http.post(
            f"{base}/checkpoints/officers", data=officer, headers=headers
        ) as beyond:
            assert beyond.status == 400
            assert "Choose an officer and a checkpoint" in await beyond.text()
        async with http.post(
            f"{base}/permits/activities",
            data=b"code=47.11&allowed=1&note=\xff\xfe&csrf=" + csrf.encode(),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        ) as latin:
            assert latin.status == 400
            assert "not UTF-8" in await latin.text()
    lab_key = await platform.services.labs.add(f"Deep lab {secrets.token_hex(3)}")
    async with ClientSession() as http:
        for depth, content_type in ((100, "application/json"), (100_000, "application/fhir+json")):
            async with http.post(
                f"{base}/api/v1/pcr-results",
                data="[" * depth + "]" * depth,
                headers={"Authorization": f"Bearer {lab_key}", "Content-Type": content_type},
            ) as deep:
                assert deep.status == 400, await deep.text()
                assert "JSON" in (await deep.json())["error"]


async def test_a_stranger_cannot_lock_the_rightful_user_out_and_guesses_slow_down(
    platform: Platform, fresh_window: None
) -> None:
    base = platform.base_url
    name = await _user(platform, "admin")
    async with (
        _browser() as rightful,
        _browser() as stranger,
    ):
        assert (await _log_in(rightful, base, name))[0] == 303  # gets a device cookie
        assert any(c.key == "citybots_device" for c in rightful.cookie_jar)
        statuses = [
            (await _log_in(stranger, base, name, "wrong guess " + str(i)))[0] for i in range(12)
        ]
        assert statuses[:3] == [401, 401, 401]
        assert 429 in statuses  # the next guesses wait, growing
        status, _, page = await _log_in(stranger, base, name, "wrong guess again")
        assert status == 429
        assert "Try again in" in page
        # Even the right password waits from a device that never logged in ...
        assert (await _log_in(stranger, base, name))[0] == 429
        # ... but the rightful device gets in at once, and its good login clears the count.
        async with rightful.post(
            f"{base}/logout", headers={"X-CSRF-Token": await _csrf(rightful, base)}
        ):
            pass
        assert (await _log_in(rightful, base, name))[0] == 303
    assert not await platform.redis.exists(f"panel-login:user:{name}")


async def test_a_forged_device_cookie_exempts_nobody(
    platform: Platform, fresh_window: None
) -> None:
    base = platform.base_url
    name = await _user(platform, "analyst")
    other = await _user(platform, "analyst")
    async with _browser() as http:
        assert (await _log_in(http, base, other))[0] == 303  # a device cookie for `other`
        device = next(c.value for c in http.cookie_jar if c.key == "citybots_device")
        for key in ("panel-login:user:", "panel-login:net:"):
            async for found in platform.redis.scan_iter(key + "*"):
                await platform.redis.delete(found)
        statuses = [(await _log_in(http, base, name, "nope " + str(i)))[0] for i in range(5)]
        assert statuses[-1] == 429  # `other`'s device cookie does not count for `name`
    async with _browser() as forged:
        forged.cookie_jar.update_cookies({"citybots_device": device.split(".")[0] + ".0" * 16})
        assert (await _log_in(forged, base, name))[0] == 429


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection (fails if it never does)."""
    async with asyncio.timeout(seconds):
        return await reader.read()


async def _closed_while(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drip: Coroutine[Any, Any, None]
) -> bytes:
    """What the server sent before it closed the connection while ``drip`` kept writing."""
    dripping = asyncio.create_task(drip)
    try:
        return await _closed_within(reader, 110)
    finally:
        dripping.cancel()
        writer.close()


async def test_idle_and_slow_connections_are_closed(platform: Platform) -> None:
    """The issue's three slow clients, at once: an idle keep-alive, a head dripped a line
    every 5 s, a body dripped a byte every 5 s. Each used to stay open past 2 minutes;
    now the keep-alive timeout (20 s) and the body deadline (30 s) close them. The bounds
    are generous: only "closed, well before 2 minutes" is asserted."""
    host, port = "127.0.0.1", platform.port

    async def idle() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 ")
        try:
            return await _closed_within(reader, 110)
        finally:
            writer.close()

    async def dripped_head() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

        async def drip() -> None:
            for n in range(30):
                await asyncio.sleep(5)
                writer.write(f"X-Drip-{n}: 1\r\n".encode())

        return await _closed_while(reader, writer, drip())

    async def dripped_body() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        )

        async def drip() -> None:
            for _ in range(30):
                writer.write(b"a")
                await asyncio.sleep(5)

        return await _closed_while(reader, writer, drip())

    idle_rest, head_rest, body_rest = await asyncio.gather(idle(), dripped_head(), dripped_body())
    assert idle_rest.endswith(b"}")  # the rest of the /healthz answer, then the close
    assert not head_rest.startswith(b"HTTP/1.1 200")
    assert body_rest.startswith(b"HTTP/1.1 408"), body_rest[:200]
    assert b"too slowly" in body_rest


async def test_healthz_answers_while_a_large_import_runs(
    platform: Platform, fresh_window: None
) -> None:
    """60 MB of bad rows used to take the server with it; now the upload streams to disk,
    the report keeps the first 100,000 rejected rows and a count, and the probe answers
    while the import is still running."""
    base = platform.base_url
    officer = await _user(platform, "registry_officer")
    rows = 250_000
    body = "iin,sampled_at,result_at,result,laboratory\n" + "".join(
        f"not-an-iin-{n},2026-01-01T10:00,2026-01-01T12:00,positive,Lab\n" for n in range(rows)
    )
    async with _browser() as http:
        assert (await _log_in(http, base, officer))[0] == 303
        csrf = await _csrf(http, base)
        form = FormData()
        form.add_field("kind", "pcr")
        form.add_field("file", body.encode(), filename="bad.csv", content_type="text/csv")

        async def import_file() -> dict[str, object]:
            async with http.post(
                f"{base}/registry/import", data=form, headers={"X-CSRF-Token": csrf}
            ) as answer:
                assert answer.status == 200, await answer.text()
                report: dict[str, object] = await answer.json()
                return report

        importing = asyncio.create_task(import_file())
        answered_during_import = 0
        async with ClientSession() as probe:
            while not importing.done():
                async with probe.get(f"{base}/healthz") as health:
                    assert health.status in (200, 503)
                    if not importing.done():
                        answered_during_import += 1
                await asyncio.sleep(0.05)
        report = await importing
    assert answered_during_import >= 1
    assert report["rows"] == rows
    assert report["rejected"] == rows  # no row holds an IIN
    assert report["rejected_listed"] == 100_000
    url = report["rejected_report"]
    assert isinstance(url, str)
    async with _browser() as http:
        assert (await _log_in(http, base, officer))[0] == 303
        async with http.get(base + url) as listed:
            text = await listed.text()
    lines = text.splitlines()
    assert len(lines) == 1 + 100_000 + 1
    assert "150,000 more rejected rows not listed" in lines[-1]
    json.dumps(report)
