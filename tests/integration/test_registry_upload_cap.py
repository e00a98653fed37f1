"""The Health registry upload is capped (REGISTRY_UPLOAD_MAX_MB): a larger file is refused
with 413 and a clear message, whether its size is announced or only found while it
streams to disk, and nothing of it is left on disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, FormData, web
from aiohttp.test_utils import TestServer

from admin.registry_pages import MAX_UPLOAD, REPORTS, upload

LIMIT = 1024**2


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    app = web.Application()
    app[MAX_UPLOAD] = LIMIT
    app[REPORTS] = tmp_path / "reports"
    app.router.add_post("/registry/import", upload)
    async with TestServer(app) as running:
        yield running


async def _chunks(size: int) -> AsyncIterator[bytes]:
    line = b"not-an-iin,2026-01-01T10:00,2026-01-01T12:00,positive,Lab\n"
    sent = 0
    while sent < size:
        yield line * 1000
        sent += len(line) * 1000


async def test_a_file_beyond_the_cap_streamed_without_a_length_is_refused_with_413(
    server: TestServer, tmp_path: Path
) -> None:
    form = FormData()
    form.add_field("kind", "pcr")
    form.add_field("file", _chunks(3 * LIMIT), filename="big.csv", content_type="text/csv")
    async with (
        ClientSession() as http,
        http.post(server.make_url("/registry/import"), data=form) as answer,
    ):
        assert answer.status == 413
        assert "larger than 1 MB (REGISTRY_UPLOAD_MAX_MB)" in (await answer.json())["error"]
    assert list((tmp_path / "reports").iterdir()) == []  # the spool file is gone


async def test_a_file_announced_beyond_the_cap_is_refused_before_its_body_is_read(
    server: TestServer,
) -> None:
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /registry/import HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 209715200\r\n\r\n"  # 200 MB announced, none sent
    )
    await writer.drain()
    async with asyncio.timeout(60):
        head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 413")
