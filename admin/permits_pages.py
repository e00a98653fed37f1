"""The Permits page: the queue of applications waiting for an officer (with the rules
they failed), approve or reject with a reason, search by BIN, IIN or plate, revoke; and
which activity codes may receive permits (admins). Every decision is audited."""

from __future__ import annotations

from datetime import UTC, date, datetime

from aiohttp import web

from admin.panel import CITY_TIMEZONE, add_route, panel_audit, path_id, render, session_of
from presentation.i18n import label, text
from presentation.keys import input_error
from services.citizens import mask_iin
from services.permit_applications import (
    PURPOSES,
    REGISTERS,
    PermitApplications,
    PermitRow,
    parse_csv,
    window_of,
)
from services.permits import PermitError
from services.validation import InvalidInput, parse_bin

APPLICATIONS: web.AppKey[PermitApplications] = web.AppKey("permit_applications")
ROLES = frozenset({"permits_officer"})
ADMINS_ONLY: frozenset[str] = frozenset()
MAX_UPLOAD_BYTES = 1_000_000


def _label(key: str, stored: str) -> str:
    return label("en", key, stored)


async def _page(
    request: web.Request,
    *,
    error: str = "",
    notice: str = "",
    found: list[PermitRow] | None = None,
    status: int = 200,
    bad_rows: list[str] | None = None,
) -> web.Response:
    applications = request.app[APPLICATIONS]
    now = datetime.now(UTC)
    return render(
        request,
        "panel/permits.html",
        status=status,
        waiting=await applications.waiting(now=now),
        found=found,
        query=request.query.get("q", ""),
        activities=await applications.allowed_activities(),
        tz=request.app[CITY_TIMEZONE],
        rule=lambda r: _label(f"apply.rule.{r}", r),
        state=lambda s: _label(f"apply.state.{s}", s),
        purpose=lambda p: _label(f"apply.purpose.{p}", p),
        mask=mask_iin,
        error=error,
        notice=notice,
        bad_rows=bad_rows or [],
        registers=REGISTERS,
        purposes=PURPOSES,
        is_admin=session_of(request).user.role == "admin",
    )


async def permits_page(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:40]
    if not query:
        return await _page(request)
    try:
        found = await request.app[APPLICATIONS].search(query, now=datetime.now(UTC))
    except InvalidInput as error:
        return await _page(request, error=input_error("en", error.code), status=400)
    await panel_audit(request, "permits.search", {"results": str(len(found))})
    return await _page(request, found=found)


async def decide(request: web.Request) -> web.Response:
    form = await request.post()
    permit_id = path_id(request, "permit_id", "permit")
    decision = str(form.get("decision", ""))
    try:
        await request.app[APPLICATIONS].decide(
            permit_id,
            approve=decision == "approve",
            officer=session_of(request).user.username,
            reason=str(form.get("reason", "")),
        )
    except PermitError as error:
        return await _page(request, error=text("en", error.key), status=400)
    done = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}.get(decision, "")
    return await _page(request, notice=f"Permit #{permit_id} {done}.")


async def upload(request: web.Request) -> web.Response:
    """An officer applies on an organisation's behalf with a CSV of its employees (the
    same rules as in the bot; the bad rows are listed with their line)."""
    applications = request.app[APPLICATIONS]
    tz = request.app[CITY_TIMEZONE]
    form = await request.post()
    file = form.get("file")
    if not isinstance(file, web.FileField):
        return await _page(request, error="Choose a CSV file.", status=400)
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return await _page(request, error="The file is larger than 1 MB; split it.", status=400)
    try:
        organisation = await applications.organisation(parse_bin(str(form.get("bin", ""))).value)
        if organisation is None:
            raise PermitError("apply.org_unknown")
        valid_from, valid_until = window_of(
            date.fromisoformat(str(form.get("first", ""))),
            date.fromisoformat(str(form.get("last", ""))),
            today=datetime.now(tz).date(),
            tz=tz,
        )
        items, bad = parse_csv(data)
        outcome = await applications.submit(
            bin_=organisation.bin,
            applicant=session_of(request).user.username,
            register=str(form.get("register", "")),
            purpose=str(form.get("purpose", "")),
            valid_from=valid_from,
            valid_until=valid_until,
            items=items,
            source="panel",
            now=datetime.now(UTC),
        )
    except InvalidInput as error:
        return await _page(request, error=input_error("en", error.code), status=400)
    except PermitError as error:
        return await _page(request, error=text("en", error.key), status=400)
    except ValueError:
        return await _page(request, error="Choose the first and the last day.", status=400)
    notice = (
        f"Application #{outcome.application_id} for {organisation.name}: "
        f"{len(outcome.approved)} approved, {len(outcome.waiting)} waiting, "
        f"{len(outcome.rejected)} refused"
        + (f"; {len(bad)} bad rows not taken" if bad else "")
        + "."
    )
    bad_rows = [f"line {b.line}: {input_error('en', b.code)}" for b in bad[:50]]
    return await _page(request, notice=notice, bad_rows=bad_rows)


async def change_activity(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        await request.app[APPLICATIONS].set_activity(
            str(form.get("code", "")),
            form.get("allowed") == "1",
            note=str(form.get("note", "")),
            actor=session_of(request).user.username,
        )
    except PermitError as error:
        return await _page(request, error=text("en", error.key), status=400)
    return await _page(request, notice="Allowed activities saved.")


def setup_permits_pages(app: web.Application, applications: PermitApplications) -> None:
    app[APPLICATIONS] = applications
    add_route(app, "GET", "/permits", permits_page, roles=ROLES, title="Permits")
    add_route(app, "POST", "/permits/{permit_id}/decision", decide, roles=ROLES)
    add_route(app, "POST", "/permits/upload", upload, roles=ROLES)
    add_route(app, "POST", "/permits/activities", change_activity, roles=ADMINS_ONLY)
