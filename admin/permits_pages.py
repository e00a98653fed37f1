"""The Permits page: the queue of applications waiting for an officer (with the rules
they failed), approve or reject with a reason, search by BIN, IIN or plate, revoke; and
which activity codes may receive permits (admins). Every decision is audited."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from admin.audit_pages import CITY_TIMEZONE, panel_audit
from admin.panel import add_route, render, session_of
from flows.i18n import text
from services.permit_applications import PermitApplications, PermitRow
from services.permits import PermitError
from services.validation import InvalidInput

APPLICATIONS: web.AppKey[PermitApplications] = web.AppKey("permit_applications")
ROLES = frozenset({"permits_officer"})
ADMINS_ONLY: frozenset[str] = frozenset()


def _mask(iin: str | None) -> str:
    return "••••••••" + iin[-4:] if iin else ""


async def _page(
    request: web.Request,
    *,
    error: str = "",
    notice: str = "",
    found: list[PermitRow] | None = None,
    status: int = 200,
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
        rule=lambda r: text("en", f"apply.rule.{r}"),
        state=lambda s: text("en", f"apply.state.{s}"),
        purpose=lambda p: text("en", f"apply.purpose.{p}"),
        mask=_mask,
        error=error,
        notice=notice,
        is_admin=session_of(request).user.role == "admin",
    )


async def permits_page(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:40]
    if not query:
        return await _page(request)
    try:
        found = await request.app[APPLICATIONS].search(query, now=datetime.now(UTC))
    except InvalidInput as error:
        return await _page(request, error=text("en", f"errors.{error.code}"), status=400)
    await panel_audit(request, "permits.search", {"results": str(len(found))})
    return await _page(request, found=found)


async def decide(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        permit_id = int(request.match_info["permit_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such permit") from None
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
    add_route(app, "POST", "/permits/activities", change_activity, roles=ADMINS_ONLY)
