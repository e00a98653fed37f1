"""The Health registry page: CSV uploads of the registers (with a progress bar while the
file goes up, then the import's report and its rejected rows as a download), and the
queue of status disputes, decided here with a note the citizen sees."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Collection
from pathlib import Path

from aiohttp import BodyPartReader, web

from admin.panel import CITY_TIMEZONE, add_route, path_id, render_page, session_of
from services.disputes import DisputeError, DisputeService
from services.private_files import temporary_file
from services.registry import RegistryImporter
from services.registry_rows import KINDS, CsvSource

IMPORTER: web.AppKey[RegistryImporter] = web.AppKey("importer", RegistryImporter)
DISPUTES: web.AppKey[DisputeService] = web.AppKey("disputes", DisputeService)
REPORTS: web.AppKey[Path] = web.AppKey("reports_dir", Path)
MAX_UPLOAD: web.AppKey[int] = web.AppKey("registry_upload_max", int)
ROLES = frozenset({"registry_officer"})
CHUNK = 1 << 20
DISPUTE_ERRORS = {
    "dispute.officer_and_note_required": "Write a note: the citizen sees it.",
    "dispute.not_found": "No such dispute.",
    "dispute.already_resolved": "This dispute is already decided.",
    "dispute.error_needs_uphold": "Only an upheld dispute can mark a record as entered in error.",
    "dispute.nothing_behind_colour": "No record stands behind this person's colour now: "
    "nothing to mark as entered in error.",
}


async def _page(request: web.Request, *, error: str = "", notice: str = "") -> web.Response:
    return render_page(
        request,
        "panel/registry.html",
        kinds=KINDS,
        max_mb=request.app[MAX_UPLOAD] // 1024**2,
        disputes=await request.app[DISPUTES].list("open"),
        tz=request.app[CITY_TIMEZONE],
        error=error,
        notice=notice,
    )


async def registry_page(request: web.Request) -> web.Response:
    return await _page(request)


class TooLarge(Exception):
    pass


def _too_large(limit: int) -> web.Response:
    megabytes = limit // 1024**2
    response = web.json_response(
        {"error": f"the file is larger than {megabytes} MB (REGISTRY_UPLOAD_MAX_MB): split it"},
        status=413,
    )
    response.force_close()  # the rest of the body is not read
    return response


async def _spool(part: BodyPartReader, path: Path, limit: int) -> None:
    """Stream a file part to ``path``; TooLarge past ``limit`` bytes."""
    out = await asyncio.to_thread(path.open, "wb")
    written = 0
    try:
        while chunk := await part.read_chunk(CHUNK):
            written += len(chunk)
            if written > limit:
                raise TooLarge
            await asyncio.to_thread(out.write, chunk)
    finally:
        await asyncio.to_thread(out.close)


async def _small_text(part: BodyPartReader, limit: int = 64) -> str:
    raw = b""
    while chunk := await part.read_chunk(limit + 1):
        raw += chunk
        if len(raw) > limit:
            return ""
    return raw.decode("utf-8", "replace").strip()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def upload(request: web.Request) -> web.Response:
    return await import_upload(request, IMPORTER, KINDS, "/registry/rejected")


async def import_upload(
    request: web.Request,
    importer: web.AppKey[RegistryImporter],
    kinds: Collection[str],
    rejected_at: str,
) -> web.Response:
    """Stream the upload to a private temporary file (services/private_files.py), import
    it as the form's ``kind`` with the app's ``importer``, answer the report as JSON (the
    file is removed however the import ends); the rejected rows are downloaded under
    ``rejected_at``."""
    limit = request.app[MAX_UPLOAD]
    if (request.content_length or 0) > limit + CHUNK:  # the form's other fields are small
        return _too_large(limit)
    reader = await request.multipart()
    kind = ""
    report_dir = request.app[REPORTS]
    # Creating an empty file takes microseconds: not worth a thread.
    with temporary_file(report_dir, ".csv") as path:
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "kind":
                kind = await _small_text(part)
            elif part.name == "file":
                try:
                    await _spool(part, path, limit)
                except TooLarge:
                    return _too_large(limit)
        if kind not in kinds:
            return web.json_response({"error": "choose what the file holds"}, status=400)
        if await asyncio.to_thread(_size, path) == 0:
            return web.json_response({"error": "the file is empty"}, status=400)
        name = request.headers.get("X-File-Name", "upload.csv")[:100]
        username = session_of(request).user.username
        report = await request.app[importer].import_rows(
            kind,
            CsvSource(path),
            source=f"panel:{username}",
            actor=username,
            about={"file": name, "bytes": await asyncio.to_thread(_size, path)},
        )
    rejected_url = None
    if report.rejected:
        report_id = secrets.token_hex(8)
        await asyncio.to_thread(report.write_rejected, report_dir / f"{report_id}.rejected.csv")
        rejected_url = f"{rejected_at}/{report_id}"
    return web.json_response(
        {
            "kind": kind,
            "rows": report.rows,
            "accepted": report.accepted,
            "corrected": report.corrected,
            "withdrawn": report.withdrawn,
            "duplicates": report.duplicates,
            "rejected": report.rejected_total,
            "rejected_listed": len(report.rejected),
            "rejected_report": rejected_url,
            "seconds": round(report.seconds, 2),
        }
    )


async def rejected(request: web.Request) -> web.StreamResponse:
    report_id = request.match_info["report_id"]
    if not report_id.isalnum():
        raise web.HTTPNotFound(text="no such report")
    path = request.app[REPORTS] / f"{report_id}.rejected.csv"
    if not await asyncio.to_thread(path.exists):
        raise web.HTTPNotFound(text="no such report")
    return web.FileResponse(
        path,
        headers={
            "Content-Disposition": 'attachment; filename="rejected-rows.csv"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )


async def decide(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        dispute = await request.app[DISPUTES].resolve(
            path_id(request, "dispute_id", "dispute"),
            officer=session_of(request).user.username,
            upheld=form.get("decision") == "uphold",
            note=str(form.get("note", ""))[:500],
            entered_in_error=form.get("entered_in_error") == "yes",
        )
    except DisputeError as error:
        return await _page(request, error=DISPUTE_ERRORS.get(error.code, error.code))
    except (web.HTTPNotFound, ValueError):
        return await _page(request, error="No such dispute.")
    return await _page(
        request, notice=f"Dispute #{dispute.id} {dispute.state}; the citizen is told."
    )


def setup_registry_pages(
    app: web.Application,
    importer: RegistryImporter,
    disputes: DisputeService,
    reports_dir: Path,
    *,
    max_upload: int = 100 * 1024**2,
) -> None:
    app[IMPORTER] = importer
    app[MAX_UPLOAD] = max_upload
    app[DISPUTES] = disputes
    app[REPORTS] = reports_dir
    add_route(app, "GET", "/registry", registry_page, roles=ROLES, title="Health registry")
    add_route(app, "POST", "/registry/import", upload, roles=ROLES)
    add_route(app, "GET", "/registry/rejected/{report_id}", rejected, roles=ROLES)
    add_route(app, "POST", "/registry/disputes/{dispute_id}", decide, roles=ROLES)
