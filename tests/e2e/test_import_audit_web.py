"""The panel's upload and the laboratories' push API write the same two audit rows as the
command line: who started the import, then its counts (issue 17 §5)."""

import secrets
from typing import Any

import asyncpg
from aiohttp import ClientSession, CookieJar

from citybots.platform import Platform
from tests.factories import make_iin, register_upload
from tests.property.test_web import PASSWORD, _log_in


async def _import_rows(pool: asyncpg.Pool, actor: str) -> list[Any]:
    return await pool.fetch(
        "SELECT action, subject, details FROM audit_log"
        " WHERE actor = $1 AND action LIKE 'import.%' ORDER BY id",
        actor,
    )


async def test_a_panel_upload_is_audited_with_the_user_file_and_counts(platform: Platform) -> None:
    name = f"officer-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, "registry_officer", PASSWORD, actor="test")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        base = platform.base_url
        csrf = await _log_in(http, base, name)
        content = f"iin,phone\n{make_iin()},+77012345678\nnot an iin,+7701\n".encode()
        upload = register_upload("phones", content, "phones.csv")
        headers = {"X-CSRF-Token": csrf, "X-File-Name": "phones.csv"}
        async with http.post(f"{base}/registry/import", data=upload, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
    start, end = await _import_rows(platform.pool, name)
    assert (start["action"], start["subject"]) == ("import.start", "phones")
    assert start["details"]["file"] == "phones.csv"
    assert start["details"]["bytes"] == len(content)
    assert end["action"] == "import.end"
    assert (end["details"]["status"], end["details"]["rows"]) == ("done", 2)
    assert (end["details"]["accepted"], end["details"]["rejected"]) == (1, 1)


async def test_a_laboratory_push_is_audited_under_the_laboratory(platform: Platform) -> None:
    lab_name = f"Audit lab {secrets.token_hex(3)}"
    key = await platform.services.labs.add(lab_name)
    lab_id = await platform.pool.fetchval("SELECT id FROM labs WHERE name = $1", lab_name)
    result = {
        "iin": make_iin(),
        "sampled_at": "2026-01-01T09:00:00+06:00",
        "result_at": "2026-01-02T09:00:00+06:00",
        "result": "negative",
    }
    async with (
        ClientSession() as http,
        http.post(
            f"{platform.base_url}/api/v1/pcr-results",
            json=[result],
            headers={"Authorization": f"Bearer {key}"},
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()
    start, end = await _import_rows(platform.pool, f"lab:{lab_id}")
    assert start["details"]["format"] == "json"
    assert (end["details"]["status"], end["details"]["accepted"]) == ("done", 1)
