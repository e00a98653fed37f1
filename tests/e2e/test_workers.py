"""WORKERS=2 in webhook mode: two processes share the port, PostgreSQL and Redis, and
every update is handled once."""

import asyncio
import contextlib
import json
import os
import signal
import urllib.request
from pathlib import Path

from bots.sandbox.client import SandboxClient
from citybots.embedded import free_port
from citybots.settings import BOT_NAMES
from tests.commands import start_citybots
from tests.conftest import AUDIT_CHAIN_KEY
from tests.factories import help_reply
from tests.sandbox_server import serve_sandbox


def _health(port: int) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http, ours
        return dict(json.load(response))


async def test_two_workers_share_the_port_and_handle_each_update_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with serve_sandbox() as (sandbox, base):
        bots = {name: sandbox.register_bot(name) for name in BOT_NAMES}
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "AUDIT_CHAIN_KEY": AUDIT_CHAIN_KEY,
            "TELEGRAM_API_BASE": base,
            "ADMIN_PORT": str(port),
            "WORKERS": "2",
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
            "WEBHOOK_SECRET": "workers-test-secret-0123",
            **{f"{n.upper()}_BOT_TOKEN": b.token for n, b in bots.items()},
        }
        process = start_citybots("run", env=env, cwd=tmp_path)
        try:
            pids: set[object] = set()
            for _ in range(2400):  # bounded, generous: a loaded machine trains the NLU slowly
                with contextlib.suppress(OSError):
                    pids.add((await asyncio.to_thread(_health, port))["worker_pid"])
                if len(pids) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(pids) == 2
            async with SandboxClient(base) as client:
                chats = [await client.chat("citizen") for _ in range(10)]
                for chat in chats:
                    for _ in range(3):
                        await chat.send("/help")
                for chat in chats:
                    replies = await chat.replies(3, wait=20)
                    await asyncio.sleep(0.2)
                    replies += await chat.updates(count=0, wait=0)
                    assert [r["text"] for r in replies] == [help_reply("en", "citizen")] * 3
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.to_thread(process.communicate, timeout=180)
        assert process.returncode == 0, output
        assert "2 worker processes share port" in output
