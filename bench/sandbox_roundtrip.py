"""Sandbox round trip: a user's message in, the bot's reply visible on the user side.
The whole path is real: HTTP to the sandbox, aiogram long polling, the update ledger in
PostgreSQL, the language from Redis, the reply over HTTP back to the sandbox.

    .venv/bin/python bench/sandbox_roundtrip.py [--messages 1000]

Uses DATABASE_URL / REDIS_URL when set, otherwise embedded servers in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from bots.sandbox.client import SandboxClient
from citybots.embedded import free_port
from citybots.logs import setup_logging
from citybots.platform import Platform
from citybots.settings import load_settings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(messages: int) -> None:
    setup_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="citybots-bench-") as data_dir:
        settings = load_settings(data_dir=data_dir, admin_port=free_port())
        async with (
            Platform(settings) as platform,
            SandboxClient(f"{platform.base_url}/sandbox") as sandbox,
        ):
            chat = await sandbox.chat("citizen", language_code="en")
            for _ in range(20):  # warm-up
                await chat.send("/help")
                await chat.replies(1)
            latencies = []
            began = time.perf_counter()
            for _ in range(messages):
                sent = time.perf_counter()
                await chat.send("/help")
                await chat.replies(1)
                latencies.append((time.perf_counter() - sent) * 1000)
            elapsed = time.perf_counter() - began
            where = "DATABASE_URL/REDIS_URL" if settings.database_url else "embedded servers"
    print(f"cores: {os.cpu_count()}")
    print(f"messages: {messages} (sequential, one user, citizen bot, /help), on {where}")
    print(f"round trip median: {statistics.median(latencies):.2f} ms")
    print(f"round trip p99:    {percentile(latencies, 0.99):.2f} ms")
    print(f"round trip max:    {max(latencies):.2f} ms")
    print(f"throughput:        {messages / elapsed:.0f} messages/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.messages))


if __name__ == "__main__":
    main()
