"""The audit log page (who looked at or changed what, filterable) and its CSV export,
whose cells cannot run as spreadsheet formulas. Looking at the log is itself logged."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from admin.panel import CITY_TIMEZONE, PANEL, add_route, panel_audit, render
from admin.templating import csv_download
from services.panel import AuditEntry

ROLES: frozenset[str] = frozenset()  # administrators only
PAGE_ROWS = 200
EXPORT_ROWS = 100_000


def _when(raw: str, tz: ZoneInfo) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date and time like 2026-11-22T09:00") from None
    if not 1900 <= moment.year < 2200:  # beyond what PostgreSQL converts with an offset
        raise ValueError(f"{raw!r} is not between the years 1900 and 2200")
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


async def _entries(
    request: web.Request, limit: int
) -> tuple[list[AuditEntry], dict[str, str], str]:
    filters = {  # NUL cannot be in PostgreSQL text, so no stored value has it
        k: request.query.get(k, "").replace("\x00", "").strip()[:100]
        for k in ("actor", "action", "since", "until")
    }
    tz = request.app[CITY_TIMEZONE]
    try:
        since, until = _when(filters["since"], tz), _when(filters["until"], tz)
    except ValueError as error:
        return [], filters, str(error)
    entries = await request.app[PANEL].audit_entries(
        actor=filters["actor"], action=filters["action"], since=since, until=until, limit=limit
    )
    return entries, filters, ""


async def audit_page(request: web.Request) -> web.Response:
    entries, filters, error = await _entries(request, PAGE_ROWS)
    await panel_audit(request, "audit.view", filters)
    tz = request.app[CITY_TIMEZONE]
    return render(
        request,
        "panel/audit.html",
        entries=entries,
        filters=filters,
        error=error,
        tz=tz,
        limit=PAGE_ROWS,
        details=lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True) if d else "",
        export_query=request.query_string,
    )


async def audit_export(request: web.Request) -> web.Response:
    entries, filters, error = await _entries(request, EXPORT_ROWS)
    if error:
        raise web.HTTPBadRequest(text=error)
    await panel_audit(request, "audit.export", {**filters, "rows": str(len(entries))})
    tz = request.app[CITY_TIMEZONE]
    return csv_download(
        "audit-log.csv",
        ["at", "actor", "action", "subject", "details"],
        (
            [
                e.at.astimezone(tz).isoformat(timespec="seconds"),
                e.actor,
                e.action,
                e.subject,
                json.dumps(e.details, ensure_ascii=False) if e.details else "",
            ]
            for e in entries
        ),
    )


def setup_audit_pages(app: web.Application) -> None:
    add_route(app, "GET", "/audit", audit_page, roles=ROLES, title="Audit log")
    add_route(app, "GET", "/audit.csv", audit_export, roles=ROLES)
