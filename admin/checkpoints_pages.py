"""The Checkpoints page: passings per checkpoint, hour and direction (a chart and the
numbers), the latest passings with the flagged ones marked, and which officer stands
at which checkpoint (admins reassign)."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from admin.panel import CITY_TIMEZONE, add_route, audited_page, session_of
from presentation.i18n import text
from presentation.keys import PERMIT_STATES
from services.checkpoints import CheckpointService, HourCount
from services.citizens import mask_iin
from services.permits import PermitError
from services.validation import parse_row_id

CHECKPOINTS: web.AppKey[CheckpointService] = web.AppKey("checkpoints")
ROLES = frozenset({"analyst", "permits_officer"})
ADMINS_ONLY: frozenset[str] = frozenset()


def _series(counts: list[HourCount], start: datetime) -> list[dict[str, object]]:
    """Per checkpoint: 24 hourly bars in each direction, for the inline SVG chart."""
    by_checkpoint: dict[str, dict[str, list[int]]] = {}
    for c in counts:
        slot = int((c.hour - start).total_seconds() // 3600)
        if 0 <= slot < 24:
            bars = by_checkpoint.setdefault(c.checkpoint, {"in": [0] * 24, "out": [0] * 24})
            bars[c.direction][slot] += c.passings
    peak = max((max(max(b["in"]), max(b["out"])) for b in by_checkpoint.values()), default=0)
    return [
        {"name": name, "in": bars["in"], "out": bars["out"], "peak": max(peak, 1)}
        for name, bars in sorted(by_checkpoint.items())
    ]


async def checkpoints_page(
    request: web.Request, *, error: str = "", notice: str = ""
) -> web.Response:
    service = request.app[CHECKPOINTS]
    tz = request.app[CITY_TIMEZONE]
    now = datetime.now(tz)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    counts = await service.hourly_counts(since=start, until=now + timedelta(hours=1), tz=tz)
    return await audited_page(
        request,
        "checkpoints.view",
        {},
        "panel/checkpoints.html",
        checkpoints=await service.all(),
        counts=counts,
        series=_series(counts, start),
        hours=[(start + timedelta(hours=h)).strftime("%H") for h in range(24)],
        recent=await service.recent(limit=50),
        officers=await service.officers(),
        tz=tz,
        mask=mask_iin,
        permit_state=lambda s: text("en", PERMIT_STATES[s]) if s else "self-registered",
        error=error,
        notice=notice,
        is_admin=session_of(request).user.role == "admin",
    )


async def show(request: web.Request) -> web.Response:
    return await checkpoints_page(request)


async def assign(request: web.Request) -> web.Response:
    form = await request.post()
    service = request.app[CHECKPOINTS]
    officer = parse_row_id(str(form.get("officer", "")))
    checkpoint = parse_row_id(str(form.get("checkpoint", "")))
    if officer is None or checkpoint is None:
        return await checkpoints_page(request, error="Choose an officer and a checkpoint.")
    try:
        await service.assign(officer, checkpoint, actor=session_of(request).user.username)
    except PermitError as error:
        return await checkpoints_page(request, error=text("en", error.key))
    return await checkpoints_page(request, notice="Officer assigned.")


def setup_checkpoints_pages(app: web.Application, checkpoints: CheckpointService) -> None:
    app[CHECKPOINTS] = checkpoints
    add_route(app, "GET", "/checkpoints", show, roles=ROLES, title="Checkpoints")
    add_route(app, "POST", "/checkpoints/officers", assign, roles=ADMINS_ONLY)
