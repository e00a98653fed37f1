"""The web app's entry points over HTTP, on hostile input: the laboratories' push API,
``POST /model/parse``, the panel's forms and the public permit check. None may answer
500; every refusal says what is wrong; CSV downloads hold no cell a spreadsheet would run
as a formula.

Each hypothesis example is a batch of requests sent at once (``BATCH`` of them in the fuzz
run), every answer checked on its own: one example's round trips overlap, so that a case
costs the server's work rather than the client's waiting."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, DummyCookieJar, FormData
from hypothesis import example, given
from hypothesis import strategies as st

from citybots.platform import Platform
from services.audit import record
from tests.property import cases
from tests.property.strategies import FORMULA_STARTS, hostile_text

PASSWORD = "correct horse battery"
ROLES = ("admin", "analyst", "registry_officer", "permits_officer")

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    hostile_text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(hostile_text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


BATCH = 50  # requests per example in the fuzz run
UPLOADS = 25  # file uploads per example in the fuzz run (bigger bodies)


@dataclass
class Panel:
    base: str
    http: dict[str, ClientSession]
    csrf: dict[str, str]
    lab_key: str
    anonymous: ClientSession

    async def send(self, role: str, method: str, path: str, **kwargs: Any) -> tuple[int, str, str]:
        headers = {"X-CSRF-Token": self.csrf[role], **kwargs.pop("headers", {})}
        async with self.http[role].request(
            method, self.base + path, headers=headers, allow_redirects=False, **kwargs
        ) as answer:
            body = await answer.read()
            return answer.status, answer.content_type, body.decode("utf-8", "replace")


async def _log_in(http: ClientSession, base: str, username: str) -> str:
    async with http.get(f"{base}/login") as page:
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    form = {"username": username, "password": PASSWORD, "csrf": token.group(1)}
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as answer:
        assert answer.status == 303
    async with http.get(f"{base}/") as home:
        found = re.search(r'name="csrf" value="([^"]+)"', await home.text())
    assert found is not None
    return found.group(1)


@pytest.fixture(scope="module")
async def panel(platform: Platform) -> AsyncIterator[Panel]:
    # Earlier tests of the session logged in from this address too: start a fresh window.
    async for limit in platform.redis.scan_iter("panel-login:*"):
        await platform.redis.delete(limit)
    sessions: dict[str, ClientSession] = {}
    csrf: dict[str, str] = {}
    for role in ROLES:
        name = f"fuzz-{role.replace('_', '-')}-{secrets.token_hex(3)}"
        await platform.services.panel.create_user(name, role, PASSWORD, actor="test")
        sessions[role] = ClientSession(cookie_jar=CookieJar(unsafe=True))
        csrf[role] = await _log_in(sessions[role], platform.base_url, name)
    key = await platform.services.labs.add(f"Fuzz lab {secrets.token_hex(4)}")
    anonymous = ClientSession(cookie_jar=DummyCookieJar())  # as a fresh client each time
    yield Panel(platform.base_url, sessions, csrf, key, anonymous)
    for session in (*sessions.values(), anonymous):
        await session.close()


def _header(value: str) -> str:
    """What a header can carry at all: Latin-1 without control characters."""
    raw = value.encode("utf-8").decode("latin-1")
    return "".join(c for c in raw if c >= " " and c != "\x7f")


def _no_server_error(status: int, body: str) -> None:
    assert status < 500, body[:500]


def _clear_json_error(status: int, content_type: str, body: str) -> None:
    _no_server_error(status, body)
    if status >= 400:
        assert content_type == "application/json", (status, body[:200])
        message = json.loads(body)["error"]
        assert isinstance(message, str)
        assert len(message) > 10


def push_answer_is_clear(status: int, content_type: str, body: str) -> None:
    """A push API's answer: a clear JSON error, or a report accounting for every item,
    each rejected one with its line and reason."""
    _clear_json_error(status, content_type, body)
    if status == 200:
        report = json.loads(body)
        assert (
            report["accepted"] + report["duplicates"] + len(report["rejected"]) == report["rows"]
        )
        assert all(r["line"] >= 1 and r["reason"] for r in report["rejected"])


def _csv_cells_safe(body: str) -> None:
    for row in list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), row


# --- the laboratories' push API ------------------------------------------------------

RESULT_ITEMS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {
            "iin": st.one_of(hostile_text(max_size=14), st.just("791028302728")),
            "sampled_at": st.one_of(
                hostile_text(max_size=30),
                st.sampled_from(["2026-11-20T09:00:00+05:00", "0001-01-01", "9999-12-31"]),
            ),
            "result_at": st.one_of(
                hostile_text(max_size=30), st.just("2026-11-21T10:00:00+05:00")
            ),
            "result": st.sampled_from(["positive", "negative", "", "☣", "\x00"]),
        }
    ),
)


def push_bodies(items: st.SearchStrategy[object], key: str) -> st.SearchStrategy[bytes]:
    """Bodies for a push API that takes a list of ``items``, bare or under ``key``: such
    lists, any other JSON value, and bytes that are not JSON at all."""
    return st.one_of(
        st.lists(items, max_size=8).map(lambda listed: json.dumps(listed).encode()),
        st.dictionaries(st.just(key), st.lists(items, max_size=8), min_size=1).map(
            lambda body: json.dumps(body).encode()
        ),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
    )


BODIES = st.one_of(
    push_bodies(RESULT_ITEMS, "results"),
    hostile_text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


AUTHS = st.one_of(
    st.just("valid"),
    st.none(),
    hostile_text(max_size=60),
    st.sampled_from(["Bearer", "Bearer ", "Basic abc", "bearer lab_x", "Bearer lab_\x7f"]),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
)


@cases.examples(ci=60, batch=BATCH)
@given(pushes=cases.batches(st.tuples(BODIES, AUTHS, CONTENT_TYPES), fuzz=BATCH))
@example(
    pushes=[
        (b"[1, 2, 3]", "valid", "application/json"),
        (b'{"results": "x"}', "valid", "application/json"),
        (
            b'[{"iin": "791028302728", "sampled_at": "\\u0000", "result_at": "x", '
            b'"result": "positive"}]',
            "valid",
            "application/json",
        ),
    ]
)
async def test_the_lab_push_api_answers_every_request_with_json_never_a_500(
    panel: Panel, pushes: list[tuple[bytes, str | None, str]]
) -> None:
    async def push(request: tuple[bytes, str | None, str]) -> None:
        body, auth, content_type = request
        headers = {"Content-Type": content_type} if content_type else {}
        if auth == "valid":
            headers["Authorization"] = f"Bearer {panel.lab_key}"
        elif auth is not None:
            headers["Authorization"] = _header(auth)
        async with panel.anonymous.post(
            f"{panel.base}/api/v1/pcr-results", data=body, headers=headers
        ) as answer:
            status, kind, text = answer.status, answer.content_type, await answer.text()
        push_answer_is_clear(status, kind, text)

    await cases.feed("lab push API (HTTP)", pushes, push)


# --- the NLU's parse endpoint ---------------------------------------------------------

PARSE_BODIES = st.one_of(
    st.builds(lambda t: {"text": t}, hostile_text(max_size=1100)),
    JSON_VALUES,
    st.binary(max_size=100),
)


@cases.examples(ci=60, batch=BATCH)
@given(bodies=cases.batches(PARSE_BODIES, fuzz=BATCH))
@example(bodies=[{"text": "\x00"}, {"text": "Қалай тексерем?"}])
async def test_model_parse_over_http_answers_rasa_json_or_a_clear_error(
    panel: Panel, bodies: list[object]
) -> None:
    async def parse(body: object) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, kind, text = await panel.send(
            "analyst",
            "POST",
            "/model/parse",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        _clear_json_error(status, kind, text)
        if status == 200:
            answer = json.loads(text)
            assert set(answer) == {"text", "intent", "intent_ranking", "entities"}
            assert isinstance(answer["intent"]["name"], str)

    await cases.feed("NLU parse endpoint (HTTP)", bodies, parse)


# --- the panel's forms ----------------------------------------------------------------

FIELD = st.one_of(hostile_text(max_size=60), st.integers(-(10**30), 10**30).map(str))
NUMBERISH = st.one_of(
    FIELD,
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1e-100000", "1E+999999999", "0.0000000000000000000000001", "١٢", "1 000"]),
)
DAYS = st.one_of(
    st.dates().map(lambda d: d.isoformat()), FIELD, st.sampled_from(["0001-01-01", "9999-12-31"])
)
PATH_IDS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.text("0123456789", min_size=19, max_size=40),
    st.sampled_from(["1", "0", "-1", "9223372036854775808", "x", "%00", "1.5"]),
)


def _form(fields: dict[str, str]) -> FormData:
    form = FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    return form


INDICATORS = st.tuples(
    DAYS,
    st.dictionaries(
        st.sampled_from(
            ["beds_total", "beds_occupied", "lab_capacity", "ambulance_calls", "other"]
        ),
        NUMBERISH,
        max_size=4,
    ),
)


@cases.examples(ci=30, batch=BATCH)
@given(entries=cases.batches(INDICATORS, fuzz=BATCH))
@example(entries=[("2026-01-01", {"beds_total": "1e-100000"})])
async def test_the_daily_indicators_form_refuses_bad_figures_with_a_reason(
    panel: Panel, entries: list[tuple[str, dict[str, str]]]
) -> None:
    async def submit(entry: tuple[str, dict[str, str]]) -> None:
        day, figures = entry
        status, _kind, text = await panel.send(
            "analyst", "POST", "/indicators", data=_form({"day": day, **figures})
        )
        _no_server_error(status, text)
        assert status in (200, 400)
        if status == 400:
            assert 'class="error"' in text or "error" in text

    await cases.feed("admin form: daily indicators", entries, submit)


# A decision form: what is decided, by whom, the path (``{id}`` for the id) and the field
# that says why.
PERMIT_DECISION_FORM = ("permit", "permits_officer", "/permits/{id}/decision", "reason")
DISPUTE_DECISION_FORM = ("dispute", "registry_officer", "/registry/disputes/{id}", "note")


async def _decide_each(
    panel: Panel, form: tuple[str, str, str, str], decisions: list[tuple[str, str, str]]
) -> None:
    """Each (id, decision, why) posted to the decision ``form``: never a server error."""
    what, role, path, why = form

    async def decide(entry: tuple[str, str, str]) -> None:
        target, decision, reason = entry
        status, _, text = await panel.send(
            role, "POST", path.format(id=target), data=_form({"decision": decision, why: reason})
        )
        _no_server_error(status, text)

    await cases.feed(f"admin form: {what} decision", decisions, decide)


PERMIT_DECISIONS = st.tuples(
    PATH_IDS, st.one_of(FIELD, st.sampled_from(["approve", "reject"])), FIELD
)


@cases.examples(ci=30, batch=BATCH)
@given(decisions=cases.batches(PERMIT_DECISIONS, fuzz=BATCH))
@example(decisions=[("9223372036854775808", "approve", "")])
async def test_a_permit_decision_on_any_id_never_fails_the_server(
    panel: Panel, decisions: list[tuple[str, str, str]]
) -> None:
    await _decide_each(panel, PERMIT_DECISION_FORM, decisions)


PERMIT_UPLOADS = st.tuples(
    st.one_of(FIELD, st.just("971240001315")),
    DAYS,
    DAYS,
    st.one_of(FIELD, st.sampled_from(["city", "roadblock"])),
    st.one_of(FIELD, st.just("work")),
    st.one_of(st.binary(max_size=300), hostile_text(max_size=300).map(str.encode)),
)


@cases.examples(ci=20, batch=UPLOADS)
@given(uploads=cases.batches(PERMIT_UPLOADS, fuzz=UPLOADS))
@example(uploads=[("971240001315", "9999-12-31", "9999-12-31", "", "", b"")])  # was a 500
async def test_a_permit_csv_upload_answers_with_the_page_never_a_500(
    panel: Panel, uploads: list[tuple[str, str, str, str, str, bytes]]
) -> None:
    async def upload(entry: tuple[str, str, str, str, str, bytes]) -> None:
        bin_, first, last, register, purpose, content = entry
        form = _form(
            {
                "bin": bin_,
                "first": first,
                "last": last,
                "register": register,
                "purpose": purpose,
                "csrf": panel.csrf["permits_officer"],
            }
        )
        form.add_field("file", content, filename="staff.csv", content_type="text/csv")
        status, _, text = await panel.send("permits_officer", "POST", "/permits/upload", data=form)
        _no_server_error(status, text)

    await cases.feed("admin form: permit CSV upload", uploads, upload)


@cases.examples(ci=30, batch=BATCH)
@given(queries=cases.batches(FIELD, fuzz=BATCH))
@example(queries=["\x00"])
async def test_the_permit_search_takes_any_query(panel: Panel, queries: list[str]) -> None:
    async def search(query: str) -> None:
        status, _, text = await panel.send(
            "permits_officer", "GET", "/permits", params={"q": query}
        )
        _no_server_error(status, text)

    await cases.feed("admin form: permit search", queries, search)


REGISTRY_UPLOADS = st.tuples(
    st.one_of(FIELD, st.sampled_from(["pcr", "phones", "orgs", "pois", "contacts"])),
    st.one_of(
        st.binary(max_size=400),
        hostile_text(max_size=400).map(lambda t: t.encode("utf-8")),
        st.just(b"iin,phone\n791028302728,+77012345678\n\x00,\xff\n"),
    ),
)


@cases.examples(ci=20, batch=UPLOADS)
@given(uploads=cases.batches(REGISTRY_UPLOADS, fuzz=UPLOADS))
async def test_a_registry_upload_answers_its_report_or_a_clear_error(
    panel: Panel, uploads: list[tuple[str, bytes]]
) -> None:
    async def upload(entry: tuple[str, bytes]) -> None:
        kind, content = entry
        form = FormData()
        form.add_field("kind", kind)
        form.add_field("file", content, filename="register.csv", content_type="text/csv")
        status, content_type, text = await panel.send(
            "registry_officer", "POST", "/registry/import", data=form
        )
        _clear_json_error(status, content_type, text)
        if status == 200:
            report = json.loads(text)
            assert report["accepted"] + report["duplicates"] + report["rejected"] == report["rows"]

    await cases.feed("admin form: registry upload", uploads, upload)


@cases.examples(ci=30, batch=BATCH)
@given(decisions=cases.batches(st.tuples(PATH_IDS, FIELD, FIELD), fuzz=BATCH))
async def test_a_dispute_decision_on_any_id_never_fails_the_server(
    panel: Panel, decisions: list[tuple[str, str, str]]
) -> None:
    await _decide_each(panel, DISPUTE_DECISION_FORM, decisions)


USER_FORMS = st.tuples(
    FIELD,
    st.one_of(FIELD, st.sampled_from(["analyst", "admin"])),
    st.one_of(FIELD, st.just("")),
    PATH_IDS,
    st.dictionaries(st.sampled_from(["role", "disabled"]), FIELD, max_size=2),
)


@cases.examples(ci=20, batch=BATCH)
@given(forms=cases.batches(USER_FORMS, fuzz=BATCH))
async def test_the_users_forms_refuse_bad_input_with_a_reason(
    panel: Panel, forms: list[tuple[str, str, str, str, dict[str, str]]]
) -> None:
    async def submit(entry: tuple[str, str, str, str, dict[str, str]]) -> None:
        username, role, password, target, change = entry
        status, _, text = await panel.send(
            "admin",
            "POST",
            "/users",
            data=_form({"username": username, "role": role, "password": password}),
        )
        _no_server_error(status, text)
        assert status in (200, 400)
        status, _, text = await panel.send("admin", "POST", f"/users/{target}", data=_form(change))
        _no_server_error(status, text)

    await cases.feed("admin form: users", forms, submit)


MODEL_RUNS = st.tuples(
    st.lists(st.one_of(FIELD, st.just("lift-13-april")), max_size=3),
    NUMBERISH,
    NUMBERISH,
    NUMBERISH,
    PATH_IDS,
)


@cases.examples(ci=20, batch=BATCH)
@given(runs=cases.batches(MODEL_RUNS, fuzz=BATCH))
async def test_the_model_run_form_refuses_bad_input_with_a_reason(
    panel: Panel, runs: list[tuple[list[str], str, str, str, str]]
) -> None:
    async def submit(entry: tuple[list[str], str, str, str, str]) -> None:
        scenarios, population, days, replicates, run = entry
        form = FormData()
        for key in scenarios:
            form.add_field("scenario", key)
        # Only refusals here: a run the form accepts is real work for the machine's cores.
        form.add_field("population", population if not population.strip().isdigit() else "-1")
        form.add_field("days", days)
        form.add_field("replicates", replicates)
        status, _, text = await panel.send("analyst", "POST", "/model/runs", data=form)
        _no_server_error(status, text)
        assert status in (303, 400)
        for suffix in ("", "/progress", "/chart.png"):
            status, _, text = await panel.send("analyst", "GET", f"/model/runs/{run}{suffix}")
            _no_server_error(status, text)

    await cases.feed("admin form: model run", runs, submit)


AUDIT_ENTRIES = st.tuples(
    st.dictionaries(
        st.sampled_from(["actor", "action", "since", "until"]),
        st.one_of(FIELD, DAYS, st.sampled_from(["0001-01-01T00:00", "9999-12-31T23:59+14:00"])),
        max_size=4,
    ),
    hostile_text(min_size=1, max_size=40),
    st.one_of(
        st.none(),
        st.tuples(st.sampled_from(FORMULA_STARTS), hostile_text(max_size=20)).map("".join),
    ),
)


@cases.examples(ci=30, batch=BATCH)
@given(entries=cases.batches(AUDIT_ENTRIES, fuzz=BATCH))
@example(
    entries=[({"since": "9999-12-31T23:59"}, "=cmd|' /C calc'!A0", "@SUM(1)"), ({}, "-", None)]
)
async def test_the_audit_log_filters_take_any_value_and_its_csv_runs_no_formula(
    platform: Platform, panel: Panel, entries: list[tuple[dict[str, str], str, str | None]]
) -> None:
    """Each entry is an audit row written with hostile text and a visit of the log's page
    and CSV with hostile filters; the batch's rows are then exported together and every
    one must be there with no cell a spreadsheet would run."""
    pool = platform.pool
    action = f"fuzz.entry.{secrets.token_hex(4)}"
    # An export whose filters set no lower bound starts at this batch: the log grows by
    # every request of the run, and exporting all of it for each case would make the
    # run quadratic. The filters are parsed and applied the same either way.
    started = datetime.now(UTC).isoformat()

    async def visit(entry: tuple[dict[str, str], str, str | None]) -> None:
        filters, actor, subject = entry
        await record(
            pool,
            actor=actor.replace("\x00", ""),
            action=action,
            subject=subject.replace("\x00", "") if subject else None,
            details={"x": actor.replace("\x00", "")},
        )
        status, _, text = await panel.send("admin", "GET", "/audit", params=filters)
        _no_server_error(status, text)
        status, _, text = await panel.send(
            "admin", "GET", "/audit.csv", params={"since": started, **filters}
        )
        _no_server_error(status, text)

    cases.enter("admin: audit log page and CSV")
    await cases.check_all(entries, visit)
    status, _, text = await panel.send("admin", "GET", "/audit.csv", params={"action": action})
    assert status == 200
    _csv_cells_safe(text)
    assert len(list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))) == len(entries) + 1
    cases.tick("admin: audit log page and CSV", len(entries))


@cases.examples(ci=15, batch=BATCH)
@given(questions=cases.batches(hostile_text(min_size=1, max_size=100), fuzz=BATCH))
@example(questions=['=HYPERLINK("http://evil")', "\t-1"])
async def test_the_hotline_and_indicators_csv_exports_run_no_formula(
    platform: Platform, panel: Panel, questions: list[str]
) -> None:
    """The batch's questions are recorded as unanswered, then both exports downloaded
    once and every cell checked."""
    hotline = platform.services.hotline
    cases.enter("admin: hotline and indicators CSV")
    await cases.check_all(
        questions,
        lambda q: hotline.record_unanswered(q.replace("\x00", ""), "en", "faq_symptoms", 0.2),
    )
    for role, path in (("analyst", "/hotline/unanswered.csv"), ("analyst", "/indicators.csv")):
        status, _, text = await panel.send(role, "GET", path)
        assert status == 200
        _csv_cells_safe(text)
        if path.startswith("/hotline"):
            rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
            assert len(rows) > len(questions)
    cases.tick("admin: hotline and indicators CSV", len(questions))


PUBLIC_CHECKS = st.tuples(
    st.one_of(FIELD, st.just("791028302728"), st.just("123 ABC 02")),
    st.one_of(st.none(), FIELD, st.sampled_from(["ru", "kk", "en"])),
    st.one_of(st.none(), hostile_text(max_size=30)),
)
PUBLIC_BATCH = 25  # fewer than the 30 checks an hour one client may make
_PUBLIC_LIMITS: set[bytes] = set()  # the rate limit counters of this test's client


@cases.examples(ci=30, batch=PUBLIC_BATCH)
@given(checks=cases.batches(PUBLIC_CHECKS, fuzz=PUBLIC_BATCH))
@example(checks=[("\x00", "kk", None)])
@example(checks=[("\x00😍\U00057e1bÆ©\x078\x88°Ç§ µ\x15\x8b6ü<b>%s\ufeffI\u200b", "en", None)])
async def test_the_public_check_answers_a_page_for_any_value(
    platform: Platform, panel: Panel, checks: list[tuple[str, str | None, str | None]]
) -> None:
    redis = platform.redis
    assert redis is not None
    # The hourly limit would answer 429 to everything: its counter is reset before each
    # batch. Found by a scan once (a scan per batch walked every key of the run: minutes).
    if not _PUBLIC_LIMITS:
        _PUBLIC_LIMITS.update([k async for k in redis.scan_iter("rate:public-check:*", 10_000)])
    if _PUBLIC_LIMITS:
        await redis.delete(*_PUBLIC_LIMITS)

    async def check(entry: tuple[str, str | None, str | None]) -> None:
        value, lang, accept = entry
        headers = {}
        if accept is not None:
            headers["Accept-Language"] = _header(accept)
        params = {"lang": lang} if lang is not None else {}
        async with panel.anonymous.post(
            f"{panel.base}/check", data={"value": value}, params=params, headers=headers
        ) as answer:
            status, text = answer.status, await answer.text()
        _no_server_error(status, text)
        assert status in (200, 400)
        assert 'class="answer' in text or "answer" in text

    await cases.feed("public /check page", checks, check)
