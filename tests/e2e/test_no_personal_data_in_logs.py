"""A canary IIN, phone number and coordinate pushed through every flow appear in no log
line a deployment writes: the platform's standard output and error as a process
(`citybots run`, at DEBUG), the operator commands' output, the embedded PostgreSQL's
server log and the embedded Redis's log (and any other ``*.log`` under the data folder).

One deployment of its own (fresh embedded servers, so their logs hold only this test),
driven over HTTP like a person would: the bots through the sandbox, the panel, the
public check and the laboratories' API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession, CookieJar, FormData
from redis.asyncio import Redis

from bots.sandbox.client import SandboxChat, SandboxClient, buttons
from citybots.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from citybots.settings import load_settings
from citybots.wiring import Services, build_services
from presentation.i18n import text
from services.db import create_pool
from tests.commands import run_citybots, start_citybots
from tests.conftest import AUDIT_CHAIN_KEY
from tests.e2e.test_permit_applications import _become_head, _fill_form
from tests.factories import (
    add_zone_with_checkpoint,
    backdate_stays,
    joined_officer,
    make_venue,
    register_upload,
    signed_up,
    venue_codes,
)

CANARY_IIN = "791028302728"
WRONG_IIN = "791028302729"  # the canary with its check digit off by one
CANARY_PHONE = "+77019998877"
CANARY_LAT, CANARY_LON = 43.2567891, 76.9123457
AWAY_LAT = 43.2574321  # about 72 m north of the canary point: outside home

# Every form the code accepts or prints of each canary (parse_iin drops spaces and dashes,
# parse_phone takes +7, 7, 8 or nothing in front, spaces, dashes and brackets).
IIN_FORMS = (CANARY_IIN, "791028 302728", "7910 2830 2728", "7910-2830-2728", WRONG_IIN)
PHONE_FORMS = (
    CANARY_PHONE,
    "77019998877",
    "87019998877",
    "7019998877",
    "8 701 999 88 77",
    "+7 (701) 999-88-77",
    "701 999 88 77",
    "9998877",
    "999-88-77",
    "999 88 77",
)
COORDINATE_FORMS = ("43.2567", "43.2568", "76.9123", "43.2574", "43.2575")
NEEDLES = IIN_FORMS + PHONE_FORMS + COORDINATE_FORMS
PASSWORD = "correct horse battery"


@dataclass
class Deployment:
    """`citybots run` as a process on embedded servers of its own; what each logged."""

    root: Path
    env: dict[str, str]
    base_url: str
    services: Services
    process: subprocess.Popen[str]
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    outputs: dict[str, str] = field(default_factory=dict)

    async def command(self, *argv: str, stdin: str | None = None) -> str:
        """An operator's `citybots ...` command; its whole output is kept as a log."""
        done = await asyncio.to_thread(
            run_citybots, *argv, env=self.env, cwd=self.root, timeout=120, stdin=stdin
        )
        self.outputs[f"citybots {' '.join(argv)} (#{len(self.outputs)})"] = (
            done.stdout + done.stderr
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


async def _healthy(url: str) -> bool:
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        async with ClientSession() as http, http.get(url) as response:
            return response.status == 200
    return False


@contextlib.asynccontextmanager
async def deployment(root: Path, nlu_cache: Path) -> AsyncIterator[Deployment]:
    postgres = EmbeddedPostgres(root / "postgres", fast=True)
    redis_server = EmbeddedRedis(root / "redis", persist=False)
    data = root / "data"
    data.mkdir()
    (data / "nlu").symlink_to(nlu_cache)  # the classifier trained once, kept between runs
    port = free_port()
    pg_url = await asyncio.to_thread(postgres.start)
    redis_url = await asyncio.to_thread(redis_server.start)
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data),
        "ADMIN_PORT": str(port),
        "AUDIT_CHAIN_KEY": AUDIT_CHAIN_KEY,
        "LOG_LEVEL": "DEBUG",
    }
    for name in [k for k in env if k.endswith("_BOT_TOKEN") or k == "WEBHOOK_BASE_URL"]:
        del env[name]
    process = start_citybots("run", env=env, cwd=root)
    base_url = f"http://127.0.0.1:{port}"
    pool: asyncpg.Pool | None = None
    redis: Redis | None = None
    try:
        deadline = time.monotonic() + 90
        while not await _healthy(f"{base_url}/healthz"):
            assert process.poll() is None, "citybots run stopped"
            assert time.monotonic() < deadline, "citybots run did not get healthy"
            await asyncio.sleep(0.2)
        pool = await create_pool(pg_url, size=3, audit_key=AUDIT_CHAIN_KEY.encode())
        redis = Redis.from_url(redis_url)
        settings = load_settings(_env_file=None, data_dir=data, audit_chain_key=AUDIT_CHAIN_KEY)
        yield Deployment(
            root, env, base_url, build_services(pool, redis, settings), process, postgres,
            redis_server,
        )  # fmt: skip
    finally:
        if pool is not None:
            await pool.close()
        if redis is not None:
            await redis.aclose()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, timeout=180)
        await asyncio.to_thread(redis_server.stop)
        await asyncio.to_thread(postgres.stop)
        (root / "citybots-run.log").write_text(output)


def _logs(root: Path, deployed: Deployment) -> dict[str, str]:
    """Every log the deployment wrote: its own output, the commands', every *.log file."""
    logs = {"citybots run": (root / "citybots-run.log").read_text(), **deployed.outputs}
    for path in root.rglob("*.log"):
        if path.name != "citybots-run.log" and path.is_file():
            logs[str(path.relative_to(root))] = path.read_text(errors="replace")
    return logs


def _leaks(logs: dict[str, str]) -> list[str]:
    found = []
    for name, content in logs.items():
        for number, line in enumerate(content.splitlines(), start=1):
            hits = [needle for needle in NEEDLES if needle in line]
            if hits:
                found.append(f"{name}:{number}: {hits}: {line[:300]}")
    return found


class Panel:
    """A panel user over plain HTTP."""

    def __init__(self, http: ClientSession, base: str) -> None:
        self.http, self.base, self.csrf = http, base, ""

    async def log_in(self, username: str) -> None:
        async with self.http.get(f"{self.base}/login") as page:
            token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None
        form = {"username": username, "password": PASSWORD, "csrf": token.group(1)}
        async with self.http.post(f"{self.base}/login", data=form) as answer:
            found = re.search(r'name="csrf" value="([^"]+)"', await answer.text())
        assert found is not None, "not logged in"
        self.csrf = found.group(1)

    async def get(self, path: str, **params: str) -> int:
        async with self.http.get(f"{self.base}{path}", params=params) as response:
            await response.read()
            return response.status

    async def post(self, path: str, data: Any) -> tuple[int, str]:
        headers = {"X-CSRF-Token": self.csrf, "Origin": self.base}
        async with self.http.post(f"{self.base}{path}", data=data, headers=headers) as r:
            return r.status, await r.text()


async def _sign_up_the_canary(sandbox: SandboxClient) -> SandboxChat:
    chat = await sandbox.chat("citizen", first_name="Canary")
    await chat.send(text("en", "citizen_menu.status"))
    await chat.reply()
    await chat.send("my number is 8 701 999 88 77")  # typed, not shared: refused
    assert (await chat.reply())["text"] == text("en", "signup.phone_expected")
    await chat.send_contact(CANARY_PHONE)
    assert (await chat.reply())["text"] == text("en", "signup.ask_iin")
    await chat.send(WRONG_IIN)
    assert (await chat.reply())["text"] == text("en", "errors.iin.check_digit")
    await chat.send(f"{CANARY_IIN} {WRONG_IIN}")
    await chat.reply()
    await chat.send("791028 302728")
    linked, card = await chat.replies(2)
    assert linked["text"] == text("en", "signup.linked")
    assert "photo" in card
    await chat.send("/status")
    assert "photo" in await chat.reply()
    return chat


async def _venue_visits(
    sandbox: SandboxClient, services: Services, canary: SandboxChat
) -> tuple[SandboxChat, SandboxChat]:
    """The canary checks in and out by QR code, then again by staff typing the IIN; another
    visitor is inside at the same time (for the exposure notice)."""
    owner = await sandbox.chat("staff")
    venue = await make_venue(services, owner=owner.user_id, verified=True)
    codes = await venue_codes(services, venue)
    other, _ = await signed_up(sandbox, services)
    for chat in (canary, other):
        await chat.send(f"/start {codes['entry']}")
        assert (await chat.reply())["text"].startswith("✅")
    await canary.send(f"/start {codes['exit']}")
    await canary.reply()
    await canary.send(text("en", "citizen_menu.visits"))
    await canary.reply()
    await owner.send(text("en", "staff_menu.checkin"))
    await owner.reply()
    for typed in (WRONG_IIN, "7910 2830 2728"):
        await owner.send(typed)
        await owner.reply()
    await canary.reply(wait=15)  # "you were checked in at ... by its staff"
    await backdate_stays(services, venue, by=timedelta(hours=1))
    return owner, other


async def _permits_and_checkpoints(sandbox: SandboxClient, services: Services) -> str:
    """The canary's organisation head (the canary phone) applies for the canary IIN in a
    people CSV; police check it, a checkpoint logs it, a traveller registers by phone."""
    from tests.factories import add_org

    bin_ = await add_org(services, head_phone=CANARY_PHONE, name="Canary LLP")
    head = await sandbox.chat("citizen")
    await _become_head(head, bin_, "8 (701) 999-88-77")
    await _fill_form(head)
    await head.send_document(
        "people.csv", f"iin;plate\n{CANARY_IIN};123 ABC 02\n{WRONG_IIN};\n7910 2830 2728;\n"
    )
    bad, _confirm = await head.replies(2)
    assert "line 3" in bad["text"]
    await head.press(text("en", "apply.submit"))
    assert text("en", "apply.outcome_approved", count=1) in (await head.reply())["text"]
    await head.press(text("en", "apply.list"))
    await head.reply()

    police = await joined_officer(sandbox, services, "police", menu="staff_menu.permit")
    for typed in (CANARY_IIN, WRONG_IIN):
        await police.send(typed)
        await police.reply()

    _zone, post = await add_zone_with_checkpoint(services, f"Gate {secrets.token_hex(2)}")
    officer = await joined_officer(
        sandbox, services, "checkpoint", checkpoint=post, menu="staff_menu.passing"
    )
    await officer.press(text("en", "checkpoint.direction.in"))
    await officer.reply()
    for typed in (CANARY_IIN, WRONG_IIN):
        await officer.send(typed)
        await officer.reply()
    traveller = await sandbox.chat("citizen")
    await traveller.send(f"/start {post.qr_token}")
    await traveller.reply()
    await traveller.press(text("en", "checkpoint.direction.in"))
    await traveller.reply()
    await traveller.send_contact(CANARY_PHONE)
    assert post.name in (await traveller.reply())["text"]
    return bin_


async def _public_check(base_url: str) -> None:
    async with ClientSession() as http:
        async with http.get(f"{base_url}/check", params={"iin": CANARY_IIN, "lang": "en"}) as r:
            assert r.status == 200
        for value in (CANARY_IIN, "7910 2830 2728", WRONG_IIN):
            async with http.post(f"{base_url}/check", data={"value": value}) as r:
                assert r.status in (200, 400)


async def _dispute(canary: SandboxChat, services: Services, deployed: Deployment) -> None:
    """A dispute whose claim carries the canaries, decided with the operator command; then
    a second one that PostgreSQL refuses with a duplicate key carrying the IIN (a unique
    index this test adds), which the bot reports as an internal error."""
    await canary.send(text("en", "citizen_menu.dispute"))
    await canary.reply()
    await canary.send(f"My IIN {CANARY_IIN}, phone 8 701 999 88 77, I am at home {CANARY_LAT}")
    await canary.reply()
    await canary.press(text("en", "dispute.skip"))
    opened = (await canary.reply())["text"]
    dispute_id = opened.split("#")[1].split()[0]
    await deployed.command(
        "disputes", "resolve", dispute_id, "reject", "--officer", "Officer A",
        "--note", f"no test for {CANARY_IIN} / {CANARY_PHONE}",
    )  # fmt: skip
    await canary.reply(wait=15)
    await services.disputes.pool.execute(
        "CREATE UNIQUE INDEX canary_one_dispute ON status_disputes (iin)"
    )
    try:
        await canary.send(text("en", "citizen_menu.dispute"))
        await canary.reply()
        await canary.send(f"again: {CANARY_IIN}")
        await canary.reply()
        await canary.press(text("en", "dispute.skip"))
        assert (await canary.reply())["text"] == text("en", "errors.internal")
    finally:
        await services.disputes.pool.execute("DROP INDEX canary_one_dispute")


async def _pcr(deployed: Deployment, services: Services, other: SandboxChat) -> None:
    """A positive result for the canary by the CSV import (the other visitor gets the
    exposure notice), a negative one by the laboratories' push API."""
    now = datetime.now(UTC)
    sampled, result = now - timedelta(hours=6), now - timedelta(minutes=5)
    pcr = deployed.root / "pcr.csv"
    pcr.write_text(
        "iin,sampled_at,result_at,result,laboratory\n"
        f"{CANARY_IIN},{sampled.isoformat()},{result.isoformat()},positive,City lab\n"
        f"{WRONG_IIN},{sampled.isoformat()},{result.isoformat()},positive,City lab\n"
        f"{CANARY_PHONE},{sampled.isoformat()},{result.isoformat()},positive,City lab\n"
    )
    await deployed.command("import", "pcr", str(pcr))
    notice = await other.reply(wait=90)  # the import runs as its own process, then the outbox
    assert notice["text"].startswith("⚠️")

    key = await services.labs.add("Canary lab")
    later = (now + timedelta(minutes=1)).isoformat()
    batch = [
        {"iin": CANARY_IIN, "sampled_at": sampled.isoformat(), "result_at": later,
         "result": "negative"},
        {"iin": WRONG_IIN, "sampled_at": sampled.isoformat(), "result_at": later,
         "result": "negative"},
        {"iin": CANARY_PHONE, "phone": CANARY_PHONE},
    ]  # fmt: skip
    url = f"{deployed.base_url}/api/v1/pcr-results"
    headers = {"Authorization": f"Bearer {key}"}
    async with ClientSession() as http:
        async with http.post(url, json=batch, headers=headers) as response:
            report = await response.json()
        assert report["accepted"] == 1, report
        broken = f'[{{"iin": "{CANARY_IIN}", "phone": "{CANARY_PHONE}"'.encode()
        async with http.post(url, data=broken, headers=headers) as response:
            assert response.status == 400


async def _quarantine(sandbox: SandboxClient, services: Services) -> None:
    """A doctor enrols the canary (IIN, home at the canary point typed in); the patient
    shares the canary phone and live location, then leaves home: the doctor is alerted."""
    doctor = await joined_officer(sandbox, services, "doctor", menu="doctor_menu.enrol")
    await doctor.send("14")
    await doctor.reply()
    await doctor.send(f"{CANARY_LAT}, {CANARY_LON + 200}")  # out of range
    await doctor.reply()
    await doctor.send(f"{CANARY_LAT}, {CANARY_LON}")
    assert (await doctor.reply())["text"] == text("en", "doctor.ask_iin")
    await doctor.send(WRONG_IIN)
    await doctor.reply()
    await doctor.send(CANARY_IIN)
    created = next(m for m in await doctor.replies(2) if "start=" in m.get("text", ""))
    code = created["text"].split()[1]
    token = created["text"].rsplit("start=", 1)[1].strip()

    patient = await sandbox.chat("quarantine")
    await patient.send(f"/start {token}")
    await patient.reply()
    await patient.press(text("en", "quarantine.agree"))
    await patient.replies(2)
    await patient.send_contact(CANARY_PHONE)
    await patient.reply()
    await patient.send_location(CANARY_LAT, CANARY_LON)  # one-off: refused
    await patient.reply()
    t0 = int(time.time())
    live = await patient.send_location(
        CANARY_LAT, CANARY_LON, live_period=8 * 3600, horizontal_accuracy=5, at=t0
    )
    await patient.reply()
    for step in range(1, 4):
        await patient.move_location(
            live, AWAY_LAT + step * 0.00001, CANARY_LON, horizontal_accuracy=5, at=t0 + 30 * step
        )
    alert = (await doctor.replies(1, wait=20))[-1]
    assert alert["text"].startswith(f"🚨 Case {code}")
    await doctor.press(text("en", "doctor.alert.button_ack"))
    await doctor.replies(1)
    await doctor.send("/cases")
    await doctor.replies(1)


async def _hotline(sandbox: SandboxClient, services: Services, canary: SandboxChat) -> None:
    """A question carrying the canaries, then a hand-off to an agent and a relayed
    conversation; an agent's scripted call typed with the canaries."""
    question = f"I am {CANARY_IIN}, phone 8 701 999 88 77, at {CANARY_LAT}, {CANARY_LON}"
    # The canary is told its own results (bulk notices, sent in their turn after replies):
    # the last one, the laboratory's negative, is read before the conversation starts.
    while "negative" not in (await canary.reply(wait=30)).get("text", ""):
        pass
    await canary.send(question)
    await canary.reply()
    await services.tickets.pool.execute("UPDATE officers SET on_shift = false")
    await canary.send(f"connect me to an operator please, my phone {CANARY_PHONE}")
    assert "#" in (await canary.reply())["text"]
    agent = await sandbox.chat("agent")
    await agent.send(
        f"/start {await services.permits.create_officer_invite('agent', created_by='t')}"
    )
    await agent.reply()
    await agent.send(text("en", "agent_menu.shift_on"))
    await agent.replies(2)
    await agent.press(text("en", "agent.take"))
    await agent.reply()
    await canary.reply()
    await canary.send(f"my iin is {CANARY_IIN} and I am at {CANARY_LAT}, {CANARY_LON}")
    await agent.reply()
    await agent.send(f"Noted {CANARY_PHONE}, {CANARY_IIN}")
    await canary.reply()
    await agent.press(text("en", "agent.close"))
    await agent.reply()
    await canary.reply()
    await agent.send(text("en", "agent_menu.script"))
    await agent.reply()
    await agent.send(f"caller {CANARY_IIN} phone {CANARY_PHONE} asks where to take a pcr test")
    suggested = await agent.reply()
    assert buttons(suggested)


PANEL_VISITS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "admin": [
        ("/audit", {"actor": CANARY_IIN, "action": CANARY_PHONE}),
        ("/audit", {"actor": "7910 2830 2728", "since": CANARY_PHONE}),
        ("/audit.csv", {"actor": CANARY_IIN}),
    ],
    "permits_officer": [
        ("/permits", {"q": CANARY_IIN}),
        ("/permits", {"q": WRONG_IIN}),
        ("/permits", {"q": "7910 2830 2728"}),
        ("/map/layers.json", {}),
    ],
    "registry_officer": [("/registry", {"iin": CANARY_IIN})],
    "epidemiologist": [
        ("/quarantine", {}),
        ("/map/layers.json", {}),
        ("/hotline", {}),
        ("/hotline/unanswered.csv", {}),
        ("/venues", {"q": CANARY_IIN}),
        ("/situation", {}),
    ],
}


async def _panel(deployed: Deployment, services: Services, bin_: str) -> None:
    """Searches and filters carrying the canaries, the pages that show cases, an upload of
    each kind and the NLU endpoint, by the roles that may."""
    today = datetime.now(services.rollups.tz).date()  # the city's day: Almaty is UTC+5
    for role, visits in PANEL_VISITS.items():
        await services.panel.create_user(role.replace("_", "-"), role, PASSWORD, actor="t")
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            panel = Panel(http, deployed.base_url)
            await panel.log_in(role.replace("_", "-"))
            for path, params in visits:
                assert await panel.get(path, **params) == 200, (role, path)
            if role == "admin":
                status, _ = await panel.post(
                    "/model/parse", f'{{"text": "{CANARY_IIN} {CANARY_PHONE} {CANARY_LAT}"}}'
                )
                assert status == 200
            if role == "registry_officer":
                rows = f"{CANARY_IIN},8 701 999 88 77\n{WRONG_IIN},{CANARY_PHONE}\n"
                form = register_upload("phones", "iin,phone\n" + rows, "phones.csv")
                status, body = await panel.post("/registry/import", form)
                assert status == 200, body
                report = re.search(r'"rejected_report": "([^"]+)"', body)
                assert report is not None, body
                assert await panel.get(report.group(1)) == 200
            if role == "permits_officer":
                form = FormData()
                for name, value in (
                    ("bin", bin_), ("first", today.isoformat()),
                    ("last", (today + timedelta(days=2)).isoformat()),
                    ("register", "roadblock"), ("purpose", "work"),
                ):  # fmt: skip
                    form.add_field(name, value)
                form.add_field(
                    "file", f"iin\n{CANARY_IIN}\n{WRONG_IIN}\n", filename="employees.csv"
                )
                status, body = await panel.post("/permits/upload", form)
                assert status == 200, body
                assert "1 bad rows" in body, body


async def test_canaries_pushed_through_every_flow_appear_in_no_log_line(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    nlu_cache = Path(request.config.cache.mkdir("citybots-nlu"))
    phones = tmp_path / "phones.csv"
    async with deployment(tmp_path, nlu_cache) as deployed:
        services = deployed.services
        phones.write_text(f"iin,phone\n{CANARY_IIN},8 701 999 88 77\n{WRONG_IIN},{CANARY_PHONE}\n")
        await deployed.command("import", "phones", str(phones))
        async with SandboxClient(f"{deployed.base_url}/sandbox") as sandbox:
            canary = await _sign_up_the_canary(sandbox)
            _owner, other = await _venue_visits(sandbox, services, canary)
            bin_ = await _permits_and_checkpoints(sandbox, services)
            await canary.send("/permit")
            await canary.reply()
            await _public_check(deployed.base_url)
            await _dispute(canary, services, deployed)
            await _pcr(deployed, services, other)
            await _quarantine(sandbox, services)
            await _hotline(sandbox, services, canary)
            await _panel(deployed, services, bin_)
            for bot in ("citizen", "staff", "quarantine", "doctor", "agent"):  # loose messages
                chat = await sandbox.chat(bot)
                await chat.send(f"/start {CANARY_IIN}")
                await chat.send(f"{CANARY_IIN} {CANARY_PHONE} 8 701 999 88 77")
                await chat.send_contact(CANARY_PHONE)
                await chat.send_location(CANARY_LAT, CANARY_LON)
                await chat.replies(2, wait=15)
    logs = _logs(tmp_path, deployed)
    # The capture saw what it should, so that a silence is not mistaken for a clean log.
    assert "Update id=" in logs["citybots run"]
    assert "bot failed on update" in logs["citybots run"]  # the duplicate key, logged
    postgres_log = logs["postgres/postgres.log"]
    assert 'duplicate key value violates unique constraint "canary_one_dispute"' in postgres_log
    assert any(name.startswith("redis") for name in logs)
    assert any(name.startswith("citybots import pcr") for name in logs)
    assert _leaks(logs) == []
    # Nor the servers' generated passwords (they travel in DATABASE_URL / REDIS_URL).
    secrets = [
        path.read_text().strip()
        for path in (
            deployed.postgres.app_password_file,
            deployed.postgres.superuser_password_file,
            deployed.redis.password_file,
        )
    ]
    assert [name for name, text in logs.items() if any(s in text for s in secrets)] == []
