"""The admin panel's access rules and its Model, Audit and Users pages, in a real
browser (Debian's Chromium) and over plain HTTP for the crawls."""

import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar
from playwright.async_api import Browser, Page, expect

from admin.panel import ROUTE_ROLES, is_public
from bots.sandbox.client import SandboxClient
from citybots.platform import Platform
from presentation.i18n import text
from services.audit import record
from services.checkpoints import Checkpoint
from services.panel import ROLES

PASSWORD = "correct horse battery"


async def _user(platform: Platform, role: str) -> str:
    name = f"{role.replace('_', '-')}-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, role, PASSWORD, actor="test")
    return name


async def _browser_login(browser: Browser, platform: Platform, username: str) -> Page:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{platform.base_url}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("header .who")).to_contain_text(username)
    return page


def _shot(page: Page, name: str) -> str | None:
    folder = os.environ.get("CITYBOTS_SCREENSHOTS")
    return f"{folder}/{name}.png" if folder else None


async def _screenshot(page: Page, name: str) -> None:
    path = _shot(page, name)
    if path:
        await page.screenshot(path=path, full_page=True)


async def _logged_in_as(
    browser: Browser, platform: Platform, role: str, at: str | None = None
) -> Page:
    """A new page logged into the panel as a new user with ``role``; then at ``at``, a
    path of the panel, when given."""
    page = await _browser_login(browser, platform, await _user(platform, role))
    if at is not None:
        await page.goto(platform.base_url + at)
    return page


async def _finished(page: Page, name: str) -> None:
    """The page's screenshot (when screenshots are asked for), no error in its console,
    and the page closed."""
    await _screenshot(page, name)
    assert page.console_errors == []  # type: ignore[attr-defined]
    await page.close()


async def _export(http: ClientSession, platform: Platform, username: str, path: str) -> str:
    """A CSV export of the panel (``path``) as a script logged in as that user reads it."""
    assert await HttpUser(http, platform.base_url).log_in(username) == 303
    async with http.get(platform.base_url + path) as export:
        return (await export.read()).decode("utf-8-sig")


async def _rejected_with_a_reason(
    page: Page, row: str, field: str, asked: str, reason: str
) -> None:
    """Reject pressed on the ``row`` (a selector) with no reason is answered ``asked``;
    then the reason is typed in its ``field`` and Reject pressed again."""
    await page.locator(row).locator("button", has_text="Reject").click()
    await expect(page.locator("#error")).to_have_text(asked)
    await page.locator(row).locator(f"input[name={field}]").fill(reason)
    await page.locator(row).locator("button", has_text="Reject").click()


class HttpUser:
    """A logged-in panel user over plain HTTP, as a script or a crawler would be."""

    def __init__(self, http: ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.csrf = ""
        self.cookies_set: list[str] = []

    async def log_in(self, username: str, password: str = PASSWORD) -> int:
        async with self.http.get(f"{self.base}/login") as page:
            token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None
        async with self.http.post(
            f"{self.base}/login",
            data={"username": username, "password": password, "csrf": token.group(1)},
            allow_redirects=False,
        ) as answer:
            status = answer.status
            self.cookies_set = answer.headers.getall("Set-Cookie", [])
        if status == 303:
            async with self.http.get(f"{self.base}/") as home:
                found = re.search(r'name="csrf" value="([^"]+)"', await home.text())
                assert found is not None
                self.csrf = found.group(1)
        return status


@pytest.fixture
async def http(platform: Platform) -> AsyncIterator[ClientSession]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield session


def _panel_routes(platform: Platform) -> list[tuple[str, str]]:
    """Every route of the web app that is not public, with path parameters filled in."""
    routes = []
    for route in platform.web_app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if is_public(canonical) or route.method == "HEAD":
            continue
        routes.append((route.method, re.sub(r"\{[^}]+\}", "1", canonical)))
    return routes


async def test_every_page_opens_empty_for_every_role_without_console_errors(
    browser: Browser, platform: Platform
) -> None:
    """First in this file, on the session's new database: the empty states."""
    await _open_every_page_as_every_role(browser, platform, "empty-")


async def test_every_route_refuses_an_anonymous_visitor(
    platform: Platform, http: ClientSession
) -> None:
    routes = _panel_routes(platform)
    assert ("GET", "/model") in routes
    assert ("GET", "/audit.csv") in routes
    for method, path in routes:
        async with http.request(
            method, f"{platform.base_url}{path}", allow_redirects=False
        ) as answer:
            if method == "GET":
                assert answer.status == 303, path
                assert answer.headers["Location"].startswith("/login?next="), path
            else:
                assert answer.status == 401, (method, path)


async def test_each_role_opens_only_its_pages(platform: Platform) -> None:
    route_roles = platform.web_app[ROUTE_ROLES]
    allowed = {
        canonical: route_roles[canonical]
        for route in platform.web_app.router.routes()
        if route.method == "GET" and route.resource is not None
        for canonical in [route.resource.canonical]
        if canonical in route_roles and "{" not in canonical
    }
    assert allowed["/users"] == {"admin"}
    assert "analyst" in allowed["/model"]
    for role in ROLES:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            user = HttpUser(http, platform.base_url)
            assert await user.log_in(await _user(platform, role)) == 303
            for path, roles in allowed.items():
                async with http.get(f"{platform.base_url}{path}", allow_redirects=False) as page:
                    expected = 200 if role in roles else 403
                    assert page.status == expected, (role, path)
                    assert page.headers["Cache-Control"] == "no-store"


async def test_every_state_changing_route_refuses_a_user_of_the_wrong_role(
    platform: Platform,
) -> None:
    """A crawl over the route table: each POST is refused (403) to every role it is not
    open to, with a valid session and CSRF token, before anything is changed."""
    route_roles = platform.web_app[ROUTE_ROLES]
    posts = [
        (canonical, route_roles[canonical])
        for route in platform.web_app.router.routes()
        if route.method == "POST" and route.resource is not None
        for canonical in [route.resource.canonical]
        if canonical in route_roles
    ]
    assert any(path == "/users" for path, _ in posts)
    for role in ROLES:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            user = HttpUser(http, platform.base_url)
            assert await user.log_in(await _user(platform, role)) == 303
            for canonical, roles in posts:
                if role in roles:
                    continue
                path = re.sub(r"\{[^}]+\}", "1", canonical)
                async with http.post(
                    f"{platform.base_url}{path}",
                    data={"csrf": user.csrf},
                    headers={"Origin": platform.base_url},
                    allow_redirects=False,
                ) as answer:
                    assert answer.status == 403, (role, canonical)


async def test_login_rotates_the_session_and_sets_strict_cookies(
    platform: Platform, http: ClientSession
) -> None:
    name = await _user(platform, "analyst")
    user = HttpUser(http, platform.base_url)
    assert await user.log_in(name) == 303
    (first,) = [c for c in user.cookies_set if c.startswith("citybots_session=")]
    assert "HttpOnly" in first
    assert "SameSite=Strict" in first
    assert "Secure" not in first  # plain HTTP here; over HTTPS the cookie is Secure
    assert await user.log_in(name) == 303
    (second,) = [c for c in user.cookies_set if c.startswith("citybots_session=")]
    assert second.split(";")[0] != first.split(";")[0]
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as other:
        other.cookie_jar.update_cookies({"citybots_session": first.split(";")[0].split("=", 1)[1]})
        async with other.get(f"{platform.base_url}/model", allow_redirects=False) as old:
            assert old.status == 303  # the session before the new login has ended


async def test_wrong_passwords_are_refused_alike_and_then_slowed_down(
    platform: Platform, http: ClientSession
) -> None:
    async for key in platform.redis.scan_iter("panel-login:*"):
        await platform.redis.delete(key)
    name = await _user(platform, "analyst")
    user = HttpUser(http, platform.base_url)
    assert await user.log_in(name, "wrong password!") == 401
    assert await user.log_in("nobody-" + secrets.token_hex(3), PASSWORD) == 401
    statuses = [await user.log_in(name, "wrong again!!") for _ in range(10)]
    assert statuses[-1] == 429
    # From a device that never logged in, even the right password waits for the delay
    # (tests/e2e/test_web_hardening.py: the rightful device does not).
    assert await user.log_in(name) == 429
    async for key in platform.redis.scan_iter("panel-login:*"):
        await platform.redis.delete(key)


async def test_a_forged_csrf_token_and_a_cross_site_post_are_refused(
    platform: Platform, http: ClientSession
) -> None:
    user = HttpUser(http, platform.base_url)
    assert await user.log_in(await _user(platform, "analyst")) == 303
    form = {"scenario": "lift-13-april", "population": "10000", "days": "60", "replicates": "1"}
    async with http.post(
        f"{platform.base_url}/model/runs", data={**form, "csrf": "forged"}, allow_redirects=False
    ) as forged:
        assert forged.status == 403
        assert "expired or was not sent from this panel" in await forged.text()
    async with http.post(
        f"{platform.base_url}/model/runs",
        data={**form, "csrf": user.csrf},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    ) as cross:
        assert cross.status == 403
    assert not [
        r for r in await platform.services.model_runs.recent() if r.request["population"] == 10000
    ]


async def _run_model(
    page: Page, button: str, *, population: int, days: int, replicates: int
) -> None:
    await page.fill("#population", str(population))
    await page.fill("#days", str(days))
    await page.fill("#replicates", str(replicates))
    await page.click(button)
    await expect(page).to_have_title(re.compile(r"Model run #\d+"))


async def test_an_analyst_runs_two_scenarios_and_compares_them_side_by_side(
    browser: Browser, platform: Platform
) -> None:
    page = await _logged_in_as(browser, platform, "analyst")
    await page.click("header nav >> text=Model")
    await expect(page).to_have_title(re.compile("Model"))
    await _screenshot(page, "model-form")
    for box in await page.locator("input[name=scenario]").all():
        await box.uncheck()
    await page.check("#s-lift-13-april")
    await page.check("#s-exit-two-steps")
    await _run_model(page, "#run", population=20000, days=150, replicates=3)
    await expect(page.locator("#results")).to_be_visible(timeout=60_000)
    header = page.locator("#results tr").first
    await expect(header).to_contain_text("Quarantine lifted on 13 April")
    await expect(header).to_contain_text("Two-step exit with masks")
    # waits for the image to load rather than reading it at once (a loaded machine is slow)
    await page.wait_for_function(
        "() => { const img = document.querySelector('#chart');"
        " return img !== null && img.complete && img.naturalWidth > 0; }",
        timeout=60_000,
    )
    chart_width = await page.eval_on_selector("#chart", "img => img.naturalWidth")
    assert chart_width == 1400
    await _finished(page, "model-run")


async def test_an_analyst_compares_schools_closed_and_open_on_the_structured_city(
    browser: Browser, platform: Platform
) -> None:
    page = await _logged_in_as(browser, platform, "analyst", "/model")
    await _run_model(page, "#compare-schools", population=100000, days=200, replicates=2)
    await expect(page.locator("#schools-compare")).to_be_visible(timeout=120_000)
    header = page.locator("#schools-compare tr").first
    await expect(header).to_contain_text("Schools open")
    await expect(header).to_contain_text("Schools closed")
    await expect(page.locator("#schools-compare")).to_contain_text("Infected, total")
    for key in ("schools-open", "schools-closed"):
        tiles = page.locator(f".district-map[data-scenario={key}] g.district")
        await expect(tiles).to_have_count(8)
    await expect(page.locator(".district-map").first).to_contain_text("Bostandyk")
    await expect(page.locator(".district-map").first).to_contain_text("/100k")
    await _finished(page, "model-schools-districts")


async def test_a_bad_model_request_gets_a_clear_message(
    browser: Browser, platform: Platform
) -> None:
    page = await _logged_in_as(browser, platform, "epidemiologist", "/model")
    for box in await page.locator("input[name=scenario]").all():
        await box.uncheck()
    await page.click("#run")
    await expect(page.locator("#error")).to_have_text("Choose at least one scenario.")
    await page.check("#s-lift-13-april")
    await page.eval_on_selector(
        "#population", "e => { e.removeAttribute('min'); e.removeAttribute('step'); }"
    )
    await page.fill("#population", "5")
    await page.click("#run")
    await expect(page.locator("#error")).to_contain_text("population must be between")
    await page.uncheck("#s-lift-13-april")
    await page.check("#s-schools-closed")
    await page.fill("#population", "20000")
    await page.select_option("#population_kind", "homogeneous")
    await page.click("#run")
    await expect(page.locator("#error")).to_contain_text("need the structured city")
    await page.close()


async def test_the_audit_log_filters_and_exports_without_formulas(
    browser: Browser, platform: Platform, http: ClientSession
) -> None:
    marker = secrets.token_hex(4)
    await record(
        platform.services.panel.pool,
        actor=f"=HYPERLINK({marker})",
        action=f"test.{marker}",
        subject="+1",
    )
    admin = await _user(platform, "admin")
    page = await _browser_login(browser, platform, admin)
    await page.click("header nav >> text=Audit log")
    await page.fill("#action", f"test.{marker}")
    await page.click("#filters button")
    await expect(page.locator("#entries tr")).to_have_count(2)
    await expect(page.locator("#entries")).to_contain_text(f"=HYPERLINK({marker})")
    await _screenshot(page, "audit")
    await page.fill("#action", "nothing.matches.this")
    await page.click("#filters button")
    await expect(page.locator("#empty")).to_be_visible()
    assert page.console_errors == []  # type: ignore[attr-defined]
    await page.close()
    body = await _export(http, platform, admin, f"/audit.csv?action=test.{marker}")
    assert f"'=HYPERLINK({marker})" in body
    assert ",'+1," in body
    entries = await platform.services.panel.audit_entries(actor=admin, action="audit.")
    assert {e.action for e in entries} == {"audit.view", "audit.export"}


async def test_an_admin_adds_a_user_changes_a_role_and_disables_an_account(
    browser: Browser, platform: Platform
) -> None:
    page = await _logged_in_as(browser, platform, "admin")
    await page.click("header nav >> text=Users")
    newcomer = f"officer-{secrets.token_hex(3)}"
    await page.fill("#new-username", newcomer)
    await page.select_option("#new-role", "permits_officer")
    await page.fill("#new-password", "short")
    await page.click("#new-user button")  # the form itself asks for 10 characters
    assert await page.locator("#new-password").evaluate("e => e.validity.tooShort")
    await page.fill("#new-password", "1234567890")
    await page.click("#new-user button")
    await expect(page.locator("#error")).to_contain_text("too easy to guess")
    await page.fill("#new-username", newcomer)
    await page.fill("#new-password", PASSWORD)
    await page.click("#new-user button")
    await expect(page.locator("#notice")).to_have_text(f"{newcomer} can log in now.")
    await _screenshot(page, "users")
    other = await _browser_login(browser, platform, newcomer)
    await other.goto(f"{platform.base_url}/model")
    await expect(other.locator("#refused")).to_contain_text("not open to the role")
    row = page.locator("#users tr", has_text=newcomer)
    await row.locator("select").select_option("analyst")
    await row.locator("button", has_text="Change").click()
    await expect(page.locator("#notice")).to_have_text("Saved.")
    await other.goto(f"{platform.base_url}/model")
    await expect(other).to_have_title(re.compile("Model"))
    row = page.locator("#users tr", has_text=newcomer)
    await row.locator("button", has_text="Disable").click()
    await expect(page.locator("#users tr", has_text=newcomer)).to_contain_text("disabled")
    await other.goto(f"{platform.base_url}/model")
    await expect(other.locator("#username")).to_be_visible()  # logged out everywhere
    await other.close()
    await page.close()


async def test_a_permits_officer_works_the_queue_searches_and_revokes(
    browser: Browser, platform: Platform
) -> None:
    from datetime import UTC, datetime

    from tests.factories import add_org, applied_from_the_panel, make_iin

    applications = platform.services.applications
    bin_ = await add_org(platform.services, quota=0, name="Queue LLP")
    first, second = make_iin(), make_iin()
    now = datetime.now(UTC)
    outcome = await applied_from_the_panel(
        platform.services, bin_, [first, second], purpose="delivery", days=3, now=now
    )
    assert len(outcome.waiting) == 2
    waiting = {p.iin: p.id for p in await applications.waiting(now=now) if p.bin == bin_}
    page = await _logged_in_as(browser, platform, "permits_officer")
    await page.click("header nav >> text=Permits")
    row = page.locator(f"#permit-{waiting[first]}")
    await expect(row).to_contain_text("over the organisation's quota")
    await row.locator("button", has_text="Approve").click()
    await expect(page.locator("#notice")).to_have_text(f"Permit #{waiting[first]} approved.")
    await _rejected_with_a_reason(
        page, f"#permit-{waiting[second]}", "reason", "Please give a reason.", "not an employee"
    )
    await expect(page.locator("#notice")).to_have_text(f"Permit #{waiting[second]} rejected.")
    await page.fill("#q", first)
    await page.click("#search button")
    found = page.locator(f"#found #permit-{waiting[first]}")
    await expect(found).to_contain_text("valid")
    await found.locator("input[name=reason]").fill("vehicle sold")
    await found.locator("button", has_text="Revoke").click()
    await expect(page.locator("#notice")).to_have_text(f"Permit #{waiting[first]} revoked.")
    await _screenshot(page, "permits")
    # The one refused form (no reason) is answered 400, which Chromium logs; nothing else.
    assert [e for e in page.console_errors if "400 (Bad Request)" not in e] == []  # type: ignore[attr-defined]
    assert len(page.console_errors) == 1  # type: ignore[attr-defined]
    assert await page.locator("#add-activity").count() == 0  # admins only
    await page.close()
    check = await platform.services.permits.check_iin(first, at=now, actor="t")
    assert check.result.value == "revoked"


async def test_an_admin_limits_the_activities_that_may_receive_permits(
    browser: Browser, platform: Platform
) -> None:
    from datetime import UTC, datetime

    from tests.factories import add_org

    applications = platform.services.applications
    bin_ = await add_org(platform.services)  # activity 10.71
    page = await _logged_in_as(browser, platform, "admin", "/permits")
    await page.fill("#code", "86.10")
    await page.fill("#note", "hospitals")
    await page.click("#add-activity button")
    await expect(page.locator("#activities")).to_contain_text("hospitals")
    organisation = await applications.organisation(bin_)
    assert organisation is not None
    assert not organisation.permitted  # 10.71 is not on the list now
    await page.locator("#activities tr", has_text="86.10").locator("button").click()
    await expect(page.locator("#activities-empty")).to_be_visible()
    organisation = await applications.organisation(bin_)
    assert organisation is not None
    assert organisation.permitted
    await page.fill("#code", "=cmd")
    await page.click("#add-activity button")
    await expect(page.locator("#error")).to_contain_text("digits and dots")
    await page.close()
    assert datetime.now(UTC)


async def _zone_and_checkpoint(platform: Platform, post_name: str) -> tuple[str, Checkpoint]:
    from tests.factories import add_zone_with_checkpoint

    return await add_zone_with_checkpoint(platform.services, post_name)


async def test_the_checkpoints_page_charts_passings_and_marks_the_flagged(
    browser: Browser, platform: Platform
) -> None:
    from datetime import UTC, datetime

    from tests.factories import make_iin

    services = platform.services
    now = datetime.now(UTC)
    _, post = await _zone_and_checkpoint(platform, f"Panel post {secrets.token_hex(2)}")
    for direction in ("in", "in", "out"):
        await services.checkpoints.log_passing(
            post, officer=5, direction=direction, value=make_iin(), at=now,
            update_key=secrets.token_hex(6),
        )  # fmt: skip
    officer_id = secrets.randbelow(10**9) + 10**9
    token = await services.permits.create_officer_invite("checkpoint", created_by="t")
    await services.permits.join_as_officer(token, officer_id, "Officer Panel", bot="staff")

    page = await _logged_in_as(browser, platform, "analyst")
    await page.click("header nav >> text=Checkpoints")
    chart = page.locator(f".chart[data-checkpoint='{post.name}']")
    await expect(chart.locator("svg")).to_be_visible()
    await expect(page.locator("#recent-passings tr.flagged", has_text=post.name)).to_have_count(2)
    await _screenshot(page, "checkpoints")
    assert await page.locator("#assign").count() == 0
    assert page.console_errors == []  # type: ignore[attr-defined]
    await page.close()

    admin = await _browser_login(browser, platform, await _user(platform, "admin"))
    await admin.goto(f"{platform.base_url}/checkpoints")
    await admin.select_option("#officer", str(officer_id))
    await admin.select_option("#checkpoint", str(post.id))
    await admin.click("#assign button")
    await expect(admin.locator("#notice")).to_have_text("Officer assigned.")
    await expect(admin.locator("#officers tr", has_text="Officer Panel")).to_contain_text(
        post.name
    )
    await admin.close()
    assigned = await services.checkpoints.checkpoint_of(officer_id)
    assert assigned is not None
    assert assigned.id == post.id


async def test_a_permits_officer_uploads_an_organisations_csv(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.factories import add_org, make_iin

    bin_ = await add_org(platform.services, name="Upload LLP")
    good = [make_iin(), make_iin()]
    csv_file = tmp_path / "staff.csv"
    csv_file.write_text("iin,plate\n" + "\n".join(good) + "\n12345,\n=SUM(A1),\n", "utf-8")
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date()
    page = await _logged_in_as(browser, platform, "permits_officer", "/permits")
    await page.click("#upload-card summary")
    await page.fill("#up-bin", bin_)
    await page.select_option("#up-purpose", "delivery")
    await page.fill("#up-first", today.isoformat())
    await page.fill("#up-last", today.isoformat())
    await page.set_input_files("#up-file", str(csv_file))
    await page.click("#upload button")
    await expect(page.locator("#notice")).to_contain_text(
        "for Upload LLP: 2 approved, 0 waiting, 0 refused; 2 bad rows not taken."
    )
    await expect(page.locator("#bad-rows")).to_contain_text("line 4")
    await expect(page.locator("#bad-rows")).to_contain_text("line 5")
    await expect(page.locator("#upload-card")).to_have_attribute("open", "")  # kept open
    await page.fill("#up-bin", "123")
    await page.set_input_files("#up-file", str(csv_file))
    await page.fill("#up-first", today.isoformat())
    await page.fill("#up-last", today.isoformat())
    await page.click("#upload button")
    await expect(page.locator("#error")).to_contain_text("12 digits")
    await page.close()
    now = datetime.now(ZoneInfo("UTC"))
    for iin in good:
        check = await platform.services.permits.check_iin(iin, at=now, actor="t")
        assert check.result.value == "valid"


async def test_model_parse_answers_a_logged_in_user_in_rasas_shape(
    platform: Platform, http: ClientSession
) -> None:
    user = HttpUser(http, platform.base_url)
    assert await user.log_in(await _user(platform, "analyst")) == 303
    url = f"{platform.base_url}/model/parse"
    async with http.post(url, json={"text": "где сдать пцр"}) as refused:
        assert refused.status == 403  # no CSRF token
    headers = {"X-CSRF-Token": user.csrf}
    async with http.post(url, json={"text": "где сдать пцр"}, headers=headers) as answer:
        assert answer.status == 200
        body = await answer.json()
    assert body["intent"]["name"] == "faq_pcr_testing"
    assert body["intent_ranking"][0]["name"] == "faq_pcr_testing"
    async with http.post(url, data=b"not json", headers=headers) as bad:
        assert bad.status == 400
        assert "JSON" in (await bad.json())["error"]


async def test_the_hotline_page_maps_calls_and_exports_unanswered_questions(
    browser: Browser, platform: Platform, http: ClientSession
) -> None:
    services = platform.services
    for district, topic in (
        ("Medeu", "faq_vaccine"),
        ("Medeu", "faq_vaccine"),
        ("Almaly", "faq_symptoms"),
    ):
        await services.tickets.log_call(7, topic=topic, outcome="answered", district=district)
    marker = secrets.token_hex(3)
    await services.hotline.record_unanswered(f"=cmd {marker}", "ru", "faq_origin", 0.2)
    await services.hotline.record_unanswered(f"jazz {marker}", "en", "out_of_scope", 0.33)
    await services.rollups.refresh()
    analyst = await _user(platform, "analyst")
    page = await _browser_login(browser, platform, analyst)
    await page.click("header nav >> text=Hotline")
    await expect(page.locator("#heatmap")).to_be_visible()
    await expect(page.locator("#heatmap")).to_contain_text("Medeu")
    await expect(page.locator("#topics")).to_contain_text("Vaccination")
    await expect(page.locator("#unanswered")).to_contain_text(f"=cmd {marker}")
    await expect(page.locator("#call-log")).to_contain_text("Vaccination")
    await page.locator("#script-symptoms summary").click()
    await expect(page.locator("#script-symptoms-emergency")).to_contain_text(
        "outcome: " + text("en", "agent.outcome.ambulance")
    )
    # intents and outcomes by their names, never the codes
    await expect(page.locator("#unanswered")).to_contain_text(text("en", "intent.out_of_scope"))
    shown = await page.locator("main").inner_text()
    for code in ("out_of_scope", "faq_", "permit_howto", "suggested for", "⇒ outcome: answered"):
        assert code not in shown, code
    await _finished(page, "hotline")
    body = await _export(http, platform, analyst, "/hotline/unanswered.csv")
    assert f"'=cmd {marker}" in body


async def _open_violation(platform: Platform) -> tuple[str, int]:
    """A patient who walked out of home: their case code and the open alert's id."""
    from datetime import UTC, date, datetime, timedelta

    from services.location_fixes import Fix
    from services.validation import Coordinates

    q = platform.services.quarantine
    doctor = secrets.randbelow(10**9) + 10**9
    await q.join_as_doctor(await q.create_doctor_invite("Medeu", created_by="t"), doctor, "D")
    case = await q.enrol(
        doctor, isolation_end=date.today() + timedelta(days=5), home=Coordinates(43.2389, 76.8897)
    )
    patient = secrets.randbelow(10**9) + 2 * 10**9
    await q.consent(case.invite_token, patient)
    now = datetime.now(UTC)
    live_until = now + timedelta(hours=8)
    await q.ingest([Fix(patient, 1, now, 43.2389, 76.8897, 5.0, live_until)])  # at home
    await q.ingest(
        [
            Fix(patient, 1, now + timedelta(seconds=s), 43.2489, 76.8897, 5.0, live_until)
            for s in (60, 90)
        ]
    )
    (alert,) = [a for a in await q.open_alerts() if a.case_code == case.code]
    return case.code, alert.id


async def test_an_epidemiologist_acknowledges_a_violation_by_case_code(
    browser: Browser, platform: Platform
) -> None:
    code, alert_id = await _open_violation(platform)
    page = await _logged_in_as(browser, platform, "epidemiologist")
    await page.click("header nav >> text=Quarantine")
    row = page.locator(f"#alert-{alert_id}")
    await expect(row).to_contain_text(code)
    await expect(row).to_contain_text("left home")
    await row.locator("button", has_text="Acknowledge").click()
    await expect(page.locator("#notice")).to_have_text(f"Alert #{alert_id} acknowledged.")
    await expect(page.locator(f"#alert-{alert_id}")).to_contain_text("acknowledged")
    await _finished(page, "panel-quarantine")


async def test_the_venues_page_shows_occupancy_against_capacity(
    browser: Browser, platform: Platform
) -> None:
    name = f"Panel Cafe {secrets.token_hex(3)}"
    venue_id = await platform.services.venues.pool.fetchval(
        "INSERT INTO venues (bin, name, address, capacity) VALUES ('200440012345', $1,"
        " 'Abay 10', 2) RETURNING id",
        name,
    )
    from tests.factories import make_iin

    await platform.services.venues.pool.execute(
        "INSERT INTO visits (venue_id, iin, via, status, admitted)"
        " VALUES ($1, $2, 'staff', 'green', true)",
        venue_id,
        make_iin(),
    )
    page = await _logged_in_as(browser, platform, "analyst")
    await page.click("header nav >> text=Venues")
    await page.fill("#q", name)
    await page.click("#search button")
    row = page.locator("#venues tr", has_text=name)
    await expect(row).to_contain_text("Abay 10")
    await expect(row.locator("td.num").first).to_have_text("1")
    await page.fill("#q", "no such venue anywhere")
    await page.click("#search button")
    await expect(page.locator("#no-venues")).to_be_visible()
    assert page.console_errors == []  # type: ignore[attr-defined]
    await page.close()


async def _new_login_window(platform: Platform) -> None:
    """This file logs in from one address more often than the panel allows in a window
    (30 in 15 minutes); a test that adds logins starts a new window."""
    async for key in platform.redis.scan_iter("panel-login:*"):
        await platform.redis.delete(key)


async def test_a_registry_officer_approves_a_venue_and_withdraws_the_approval_the_owner_told(
    platform: Platform, sandbox: SandboxClient
) -> None:
    from presentation.i18n import text
    from services.venues import LookupAccess
    from tests.factories import make_venue

    await _new_login_window(platform)
    venues = platform.services.venues
    owner = await sandbox.chat("staff", language_code="en")
    await owner.send("/start")  # the owner registered it in the staff bot
    await owner.reply()
    venue = await make_venue(platform.services, owner=owner.user_id)
    form = f"/venues/{venue.id}/verification"
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        analyst = HttpUser(http, platform.base_url)
        assert await analyst.log_in(await _user(platform, "analyst")) == 303
        async with http.get(f"{platform.base_url}/venues", params={"q": venue.name}) as page:
            listed = await page.text()
        assert venue.name in listed
        assert form not in listed  # no approval button for an analyst
        async with http.post(
            f"{platform.base_url}{form}", data={"decision": "approve", "csrf": analyst.csrf}
        ) as refused:
            assert refused.status == 403
    assert not (await venues.venue(venue.id)).verified

    officer_name = await _user(platform, "registry_officer")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        officer = HttpUser(http, platform.base_url)
        assert await officer.log_in(officer_name) == 303
        async with http.get(f"{platform.base_url}/venues", params={"q": venue.bin}) as page:
            assert form in await page.text()  # found by BIN, with its Approve button

        async def post(**data: str) -> tuple[int, str]:
            async with http.post(
                f"{platform.base_url}{form}", data={**data, "csrf": officer.csrf}
            ) as answer:
                return answer.status, await answer.text()

        status, page_text = await post(decision="approve")
        assert status == 200
        assert f"{venue.name} is verified; its owner is told" in page_text
        row = await venues.pool.fetchrow(
            "SELECT verified_how, verified_by, verified_owner FROM venues WHERE id = $1",
            venue.id,
        )
        assert tuple(row) == ("officer", officer_name, owner.user_id)
        assert await venues.lookup_access(venue.id, owner.user_id) is LookupAccess.ALLOWED
        audited = await venues.pool.fetchval(
            "SELECT actor FROM audit_log WHERE action = 'venue.verified' AND subject = $1",
            f"venue:{venue.id}",
        )
        assert audited == officer_name
        told = await owner.reply(wait=15)
        assert told["text"] == text("en", "notices.venue_verified", venue=venue.name)
        status, page_text = await post(decision="approve")
        assert (status, "already verified" in page_text) == (400, True)

        status, page_text = await post(decision="withdraw", reason="  ")
        assert (status, "Say why" in page_text) == (400, True)
        assert (await venues.venue(venue.id)).verified
        status, page_text = await post(decision="withdraw", reason="looked up strangers")
        assert status == 200
        assert f"{venue.name} is no longer verified" in page_text
    assert not (await venues.venue(venue.id)).verified
    told = await owner.reply(wait=15)
    assert told["text"] == text(
        "en", "notices.venue_unverified", venue=venue.name, reason="looked up strangers"
    )


async def test_the_audit_page_counts_look_ups_per_staff_account_and_venue_and_shows_flags(
    platform: Platform, http: ClientSession
) -> None:
    from services.staff_lookups import FLAG_MIN_LOOKUPS
    from tests.factories import make_iin, make_venue

    await _new_login_window(platform)
    services = platform.services
    staff = secrets.randbelow(10**9) + 10**9
    venue = await make_venue(services, owner=staff, verified=True)
    for _ in range(FLAG_MIN_LOOKUPS):
        await services.visits.staff_check_in(make_iin(), venue, staff_tg_user_id=staff)
    await services.visits.staff_check_out(venue.id, make_iin(), staff_tg_user_id=staff)
    await services.staff_lookups.flag_unusual()

    admin = HttpUser(http, platform.base_url)
    assert await admin.log_in(await _user(platform, "admin")) == 303
    async with http.get(f"{platform.base_url}/audit", params={"actor": f"staff:{staff}"}) as page:
        assert page.status == 200
        body = await page.text()
    lookups = body.split('id="lookups"')[1].split("</table>")[0]
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", lookups)
    ]
    assert cells == [
        f"staff:{staff}",
        f"{venue.name} (#{venue.id})",
        str(FLAG_MIN_LOOKUPS),
        "1",
        "0",
        "unusual",
    ]
    flagged = body.split('id="flagged"')[1].split("</table>")[0]
    assert f"staff:{staff}" in flagged
    assert f"{venue.name} (#{venue.id})" in flagged


async def test_an_analyst_enters_daily_indicators_with_history_and_export(
    browser: Browser, platform: Platform, http: ClientSession
) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    analyst = await _user(platform, "analyst")
    page = await _browser_login(browser, platform, analyst)
    await page.click("header nav >> text=Daily indicators")
    day = datetime.now(ZoneInfo(platform.settings.city_timezone)).date() - timedelta(days=1)
    await page.fill("#day", day.isoformat())
    await page.fill("#beds_total", "1 200")
    await page.fill("#beds_occupied", "seven")
    await page.click("#figures button")
    await expect(page.locator("#error")).to_contain_text("'seven' is not a number")
    await expect(page.locator("#beds_total")).to_have_value("1 200")  # kept for correcting
    await page.fill("#beds_occupied", "870")
    await page.click("#figures button")
    await expect(page.locator("#notice")).to_have_text(f"Saved 2 figure(s) for {day}.")
    row = page.locator("#history tr", has_text=day.isoformat())
    await expect(row).to_contain_text("1200")
    await expect(row).to_contain_text("870")
    await _screenshot(page, "indicators")
    await page.click("header nav >> text=Sandbox chat")
    await expect(page).to_have_title("citybots sandbox")
    await page.close()
    body = await _export(http, platform, analyst, "/indicators.csv")
    assert f"{day.isoformat()},1200,870" in body


async def test_a_registry_officer_uploads_a_csv_and_decides_a_dispute(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    from tests.factories import make_iin

    good = make_iin()
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "iin,registered_at,isolation_end\n"
        f"{good},2026-11-01 10:00,2026-11-15 10:00\n"
        "12345,2026-11-01 10:00,2026-11-15 10:00\n"
        "=HYPERLINK(1),2026-11-01,2026-11-15\n",
        encoding="utf-8",
    )
    disputed = make_iin()
    dispute = await platform.services.disputes.pool.fetchval(
        "INSERT INTO status_disputes (tg_user_id, iin, status_shown, claim)"
        " VALUES (1, $1, 'red', 'my negative test is missing') RETURNING id",
        disputed,
    )
    page = await _logged_in_as(browser, platform, "registry_officer")
    await page.click("header nav >> text=Health registry")
    await page.select_option("#kind", "contacts")
    await page.set_input_files("#file", str(csv_file))
    await page.click("#upload button")
    await expect(page.locator("#result")).to_contain_text(
        "3 rows: 1 added, 0 already known, 2 rejected"
    )
    async with page.expect_download() as download_info:
        await page.click("#rejected-link")
    download = await download_info.value
    report = Path(await download.path()).read_text(encoding="utf-8")  # noqa: ASYNC240
    assert "iin.length" in report
    assert "'=HYPERLINK(1)" in report  # neutralised for spreadsheets
    await _rejected_with_a_reason(
        page,
        f"#dispute-{dispute}",
        "note",
        "Write a note: the citizen sees it.",
        "No negative result after the isolation end.",
    )
    await expect(page.locator("#notice")).to_have_text(
        f"Dispute #{dispute} rejected; the citizen is told."
    )
    await _screenshot(page, "registry")
    await page.close()


async def test_the_situation_centre_shows_todays_figures_charts_and_the_calls_heat_map(
    browser: Browser, platform: Platform
) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from tests.factories import add_pcr, make_iin, make_venue

    services = platform.services
    lab = f"Situation lab {secrets.token_hex(2)}"
    for _ in range(3):
        await add_pcr(services, make_iin(), "positive", laboratory=lab)
    await add_pcr(services, make_iin(), "negative", laboratory=lab)
    venue = await make_venue(services)
    now = datetime.now(UTC)
    await services.venues.pool.executemany(
        "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at, checked_out_at,"
        " checkout_kind) VALUES ($1, $2, 'qr', 'green', true, $3, $3, 'scan')",
        [(venue.id, make_iin(), now - timedelta(minutes=m)) for m in (1, 2, 3)],
    )
    await services.tickets.log_call(
        7, topic="faq_symptoms", outcome="ambulance", district="Auezov"
    )
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date()
    # Where the hospitals' beds feed has rows, it is the figure (the feed tests check that);
    # this test checks the one typed by hand, so another test's feed rows go first.
    await services.venues.pool.execute("DELETE FROM feed_records WHERE feed = 'beds'")
    await services.indicators.save(
        today,
        {
            "beds_occupied": Decimal(420),
            "beds_total": Decimal(1000),
            "lab_capacity": Decimal(5000),
        },
        actor="test",
    )
    await services.rollups.refresh()
    page = await _logged_in_as(browser, platform, "analyst")
    await page.click("header nav >> text=Situation centre")
    await expect(page.locator("#as-of")).to_contain_text("Figures as of")
    new_cases = page.locator("#tile-new-cases .value")
    assert int((await new_cases.inner_text()).replace(",", "")) >= 3
    await expect(page.locator("#tile-in-hospital .value")).to_have_text("420")
    await expect(page.locator("#tile-in-hospital")).to_contain_text("of 1,000 beds")
    await expect(page.locator("#chart-pcr-tests")).to_contain_text(lab)
    await expect(page.locator("#chart-pcr-tests")).to_contain_text("capacity")
    await expect(page.locator("#chart-checkins rect[fill='#2e7d32']").first).to_be_attached()
    await expect(page.locator("#heatmap")).to_contain_text("Auezov")
    await _finished(page, "situation")


async def test_the_map_draws_zones_checkpoints_venues_and_violations_without_tiles(
    browser: Browser, platform: Platform, http: ClientSession
) -> None:

    from tests.factories import make_iin, make_venue

    services = platform.services
    name, post = await _zone_and_checkpoint(platform, f"Map post <b>{secrets.token_hex(2)}</b>")
    venue = await make_venue(services)
    await services.venues.pool.execute(
        "INSERT INTO visits (venue_id, iin, via, status, admitted) VALUES ($1, $2, 'qr',"
        " 'green', true)",
        venue.id,
        make_iin(),
    )
    code, _ = await _open_violation(platform)

    page = await _logged_in_as(browser, platform, "epidemiologist")
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "tile" in r.url else None)
    await page.click("header nav >> text=Map")
    await expect(page.locator("#map[data-ready=true]")).to_be_attached()
    await expect(page.locator("#no-tiles")).to_be_visible()
    assert tiles == []
    summary = page.locator("#map-summary")
    await expect(summary).to_contain_text("open violations")
    await expect(page.locator("#violations-list")).to_contain_text(code)
    # Zones, checkpoints and violations are SVG paths; venues are drawn on a canvas (the
    # ambulance calls' points on another one, once there are calls).
    assert await page.locator("#map path.leaflet-interactive").count() >= 3
    await expect(page.locator("#map canvas").first).to_be_attached()
    await page.locator("#violations-list li", has_text=code).click()
    await expect(page.locator(".leaflet-popup-content")).to_contain_text(f"Case {code}")
    await _screenshot(page, "map")
    seen = await services.venues.pool.fetchval(
        "SELECT details->>'violations' FROM audit_log WHERE action = 'map.view'"
        " ORDER BY id DESC LIMIT 1"
    )
    assert code in seen
    assert page.console_errors == []  # type: ignore[attr-defined]
    await page.close()

    # An analyst gets the same layers without anyone's violations; markup stays text.
    user = HttpUser(http, platform.base_url)
    assert await user.log_in(await _user(platform, "analyst")) == 303
    async with http.get(f"{platform.base_url}/map/layers.json") as answer:
        assert answer.status == 200
        assert answer.headers["Cache-Control"] == "no-store"
        layers = await answer.json()
    assert "violations" not in layers
    names = [f["properties"]["name"] for f in layers["checkpoints"]["features"]]
    assert post.name in names
    assert any(f["properties"]["name"] == name for f in layers["zones"]["features"])


async def _open_every_page_as_every_role(
    browser: Browser, platform: Platform, screenshots: str
) -> None:
    route_roles = platform.web_app[ROUTE_ROLES]
    pages = sorted(
        canonical
        for route in platform.web_app.router.routes()
        if route.method == "GET" and route.resource is not None
        for canonical in [route.resource.canonical]
        if canonical in route_roles
        and "{" not in canonical
        and not canonical.endswith((".csv", ".json"))
    )
    assert "/quarantine" in pages
    for role in ROLES:
        page = await _logged_in_as(browser, platform, role)
        for path in pages:
            if role not in route_roles[path]:
                continue
            response = await page.goto(f"{platform.base_url}{path}")
            assert response is not None
            assert response.status == 200, (role, path)
            await expect(page.locator("header .who")).to_be_visible()
            if path == "/map":
                await expect(page.locator("#map[data-ready=true]")).to_be_attached()
            if role == "admin":
                await _screenshot(page, screenshots + (path.strip("/") or "home"))
        assert page.console_errors == [], role  # type: ignore[attr-defined]
        await page.close()


async def test_every_page_opens_for_every_role_it_is_open_to_without_console_errors(
    browser: Browser, platform: Platform
) -> None:
    """After the other tests of this file have put data on every page."""
    await _open_every_page_as_every_role(browser, platform, "page-")


async def test_the_navigation_fits_a_wide_screen_in_one_line_and_folds_into_a_menu_on_a_phone(
    browser: Browser, platform: Platform
) -> None:
    admin = await _user(platform, "admin")  # an admin sees every page's link
    page = await _browser_login(browser, platform, admin)
    await page.set_viewport_size({"width": 1400, "height": 900})
    links = page.locator("header nav a")
    assert await links.count() >= 12
    tops = {round((await link.bounding_box() or {"y": -1})["y"]) for link in await links.all()}
    assert len(tops) == 1  # one line: nothing wrapped
    overflow = await page.eval_on_selector(
        "header nav", "nav => nav.scrollWidth - nav.clientWidth"
    )
    assert overflow <= 0  # and nothing hidden off to the side at 1,400 px
    await expect(page.locator("#menu-button")).to_be_hidden()

    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    log_out = page.locator("header .who button")
    await expect(log_out).to_be_visible()
    box = await log_out.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    wider = await page.evaluate("document.documentElement.scrollWidth")
    assert wider <= 390  # the page does not run off the screen
    await expect(links.first).to_be_hidden()
    await page.click("#menu-button")
    await expect(page.locator("header nav a", has_text="Hotline")).to_be_visible()
    await _screenshot(page, "panel-phone-menu")
    await page.click("header nav >> text=Hotline")
    await expect(page).to_have_title(re.compile("Hotline"))
    await expect(links.first).to_be_hidden()  # the menu folds again on the next page

    await page.set_viewport_size({"width": 1400, "height": 900})
    await page.click("header nav >> text=Sandbox chat")
    await expect(page).to_have_title("citybots sandbox")
    await page.click("#back")  # and back to the panel
    await expect(page.locator("header .who")).to_contain_text(admin)
    assert page.console_errors == []  # type: ignore[attr-defined]
    await page.close()
