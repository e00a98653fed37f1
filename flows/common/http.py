"""JSON POSTs over kept-alive HTTP/1.1 connections, for the hottest Bot API call.

aiohttp's client builds a request object, its headers, cookies, timers and a response
object for every call: two fifths of the platform's CPU per venue scan went there
(measured with py-spy on bench/ashyq.py). The check-in replies are all the same shape
(a JSON body POSTed to ``sendMessage``), so they go through this much smaller client:
a pool of connections kept open to the Bot API server, a request written in one piece,
the status line, headers and body read back. Anything unusual about the answer is left
to the caller, which sends the message again through aiogram's full client (as for a
429, which aiogram waits out).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024


class NotSent(Exception):
    """No connection could be made: the request did not leave, it may be sent again."""


class BadResponse(Exception):
    """The server's answer was not HTTP/1.x as this client reads it."""


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KeptAliveSender:
    """POSTs JSON bodies to one origin (``http://host:port`` or ``https://...``) over at
    most ``connections`` kept-alive connections; answers the status and the body."""

    def __init__(self, origin: str, *, connections: int = 64) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP origin: {origin!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_header = b"Host: " + parts.netloc.encode("idna") + b"\r\n"
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(connections)
        self.opened = 0  # connections made so far (tests, and a sign of churn)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = b"".join(
            (
                b"POST ",
                path.encode("ascii"),
                b" HTTP/1.1\r\n",
                self._host_header,
                b"Content-Type: application/json\r\nContent-Length: ",
                str(len(body)).encode("ascii"),
                b"\r\n\r\n",
                body,
            )
        )
        async with self._slots:
            connection, reused = await self._connection()
            try:
                return await self._exchange(connection, request)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                if not (reused and _nothing_read(error)):
                    raise
            # A kept-alive connection the server had closed before it read the request
            # (its idle timeout): nothing was done, so once more on a new connection.
            connection, _ = await self._connection(fresh=True)
            return await self._exchange(connection, request)

    async def close(self) -> None:
        while self._idle:
            _, writer = self._idle.popleft()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _connection(self, *, fresh: bool = False) -> tuple[_Connection, bool]:
        while self._idle and not fresh:
            reader, writer = self._idle.pop()  # the most recently used is the likeliest open
            if not writer.is_closing() and not reader.at_eof():
                return (reader, writer), True
            writer.close()
        try:
            opened = await asyncio.open_connection(
                self.host, self.port, ssl=self._tls, limit=MAX_HEAD
            )
        except OSError as error:
            raise NotSent(f"{type(error).__name__}: {error}") from error
        self.opened += 1
        return opened, False

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bytes]:
        reader, writer = connection
        try:
            writer.write(request)
            status, body, keep = await _read_response(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append(connection)
        else:
            writer.close()
        return status, body


def _nothing_read(error: BaseException) -> bool:
    return not isinstance(error, asyncio.IncompleteReadError) or not error.partial


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the connection may be used again."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as error:
        raise BadResponse("response head too long") from error
    lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    keep = (headers.get("connection", "").lower() != "close") and version == "HTTP/1.1"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, await _read_chunked(reader), keep
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as error:
            raise BadResponse("bad Content-Length") from error
        if not 0 <= length <= MAX_BODY:
            raise BadResponse("Content-Length out of range")
        return status, await reader.readexactly(length), keep
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", keep
    return status, await reader.read(MAX_BODY), False  # delimited by the server closing


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise BadResponse("bad chunk size") from error
        total += size
        if size < 0 or total > MAX_BODY:
            raise BadResponse("chunked body too large")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append((await reader.readexactly(size + 2))[:-2])
