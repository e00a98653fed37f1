"""The audit log page (who looked at or changed what, filterable) and its CSV export,
whose cells cannot run as spreadsheet formulas, with staff look-ups by IIN counted per
staff account and venue and the accounts the look-up watch flagged. Looking at the log is
itself logged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from admin.panel import CITY_TIMEZONE, PANEL, add_route, audited_csv, panel_audit, render
from services.panel import AuditEntry
from services.staff_lookups import FLAG_MIN_LOOKUPS, FLAG_RATIO, StaffLookups, unusual

STAFF_LOOKUPS: web.AppKey[StaffLookups] = web.AppKey("staff_lookups", StaffLookups)
ROLES: frozenset[str] = frozenset()  # administrators only
PAGE_ROWS = 200
EXPORT_ROWS = 100_000
LOOKUP_DAYS = 7  # the look-up counts cover this many days unless the filter says
FLAGGED_DAYS = 30


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
    lookups = request.app[STAFF_LOOKUPS]
    now = datetime.now(UTC)
    until = _when(filters["until"], tz) if not error and filters["until"] else None
    since = _when(filters["since"], tz) if not error and filters["since"] else None
    until = until or now
    since = since or until - timedelta(days=LOOKUP_DAYS)
    counts = await lookups.counts(since=since, until=until, staff=filters["actor"])
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
        lookups=counts,
        lookups_since=since,
        lookups_until=until,
        unusual=unusual,
        flag_rule=f"at least {FLAG_MIN_LOOKUPS} look-ups, more than {FLAG_RATIO}x the visitors",
        flagged=await lookups.flagged(since=now - timedelta(days=FLAGGED_DAYS)),
        flagged_days=FLAGGED_DAYS,
    )


def _csv_row(entry: AuditEntry) -> list[object]:
    details = json.dumps(entry.details, ensure_ascii=False) if entry.details else ""
    return [entry.at, entry.actor, entry.action, entry.subject, details]


async def audit_export(request: web.Request) -> web.Response:
    entries, filters, error = await _entries(request, EXPORT_ROWS)
    if error:
        raise web.HTTPBadRequest(text=error)
    return await audited_csv(
        request,
        "audit.export",
        filters,
        "audit-log.csv",
        ["at", "actor", "action", "subject", "details"],
        entries,
        _csv_row,
    )


def setup_audit_pages(app: web.Application, staff_lookups: StaffLookups) -> None:
    app[STAFF_LOOKUPS] = staff_lookups
    add_route(app, "GET", "/audit", audit_page, roles=ROLES, title="Audit log")
    add_route(app, "GET", "/audit.csv", audit_export, roles=ROLES)
