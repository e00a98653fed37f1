"""The laboratories' push API: ``POST /api/v1/pcr-results`` with a JSON batch, or with
an HL7 FHIR R4 Bundle of Observations (``Content-Type: application/fhir+json``).

Authenticated by ``Authorization: Bearer <lab key>``; the laboratory named in the
stored rows is always the authenticated one. The answer has the import report's shape:
``{"rows", "accepted", "corrected", "withdrawn", "duplicates", "rejected": [{"line",
"code", "reason"}]}``, where ``line`` is the item's (or the Bundle entry's) 1-based
position in the batch. A result whose ``result`` is ``withdrawn`` (FHIR: status
entered-in-error) withdraws the sample's stored result.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web

from services.container import Services
from services.fhir_results import FhirError, bundle_rows
from services.registry_rows import Rejected
from services.validation import loads_json

SERVICES: web.AppKey[Services] = web.AppKey("services")
MAX_BATCH = 10_000
_FIELDS = ("iin", "sampled_at", "result_at", "result")
FHIR_TYPES = ("application/fhir+json", "application/json+fhir")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def bearer_key(request: web.Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme == "Bearer" and key.strip() else None


def numbered_rows(
    items: list[Any], fields: Callable[[Any], list[str] | None]
) -> list[tuple[int, list[str]]]:
    """A batch's items as the importer's (line, fields) rows: the line is the item's
    1-based position; an item that is not the right shape is a row of one field, which
    the importer refuses as ``row.columns`` with its line."""
    rows = []
    for position, item in enumerate(items, start=1):
        row = fields(item)
        rows.append((position, row if row is not None else ["?"]))
    return rows


def _row(item: Any, laboratory: str) -> list[str] | None:
    if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in _FIELDS):
        return None
    return [item[f] for f in _FIELDS] + [laboratory]


async def push_pcr_results(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = bearer_key(request)
    lab = await services.labs.authenticate(key) if key else None
    if lab is None:
        return json_error(401, "a valid laboratory key is required: Authorization: Bearer <key>")
    fhir = request.content_type in FHIR_TYPES
    try:
        body = loads_json(await request.read())
    except ValueError:  # not JSON, not UTF-8, or nested past JSON_MAX_DEPTH
        if fhir:
            return json_error(400, "the body must be JSON: a FHIR Bundle of Observations")
        return json_error(400, 'the body must be JSON: a list of results, or {"results": [...]}')
    refused: list[Rejected] = []
    if fhir:
        entries = body.get("entry") if isinstance(body, dict) else None
        if isinstance(entries, list) and len(entries) > MAX_BATCH:
            return json_error(413, f"at most {MAX_BATCH} entries per Bundle")
        try:  # about 0.3 ms an Observation: off the event loop, which serves the bots
            rows, refused = await asyncio.to_thread(bundle_rows, body, lab.name)
        except FhirError as error:
            return json_error(400, str(error))
    else:
        items = body.get("results") if isinstance(body, dict) else body
        if not isinstance(items, list):
            return json_error(400, 'the body must be a list of results, or {"results": [...]}')
        if len(items) > MAX_BATCH:
            return json_error(413, f"at most {MAX_BATCH} results per request")
        rows = numbered_rows(items, partial(_row, laboratory=lab.name))
    report = await services.importer.import_rows(
        "pcr",
        rows,
        source=f"lab:{lab.name}",
        actor=f"lab:{lab.id}",
        about={"format": "fhir" if fhir else "json", "bytes": request.content_length},
        refused=refused,
    )
    return web.Response(text=json.dumps(report.as_dict()), content_type="application/json")


def setup_api(app: web.Application, services: Services) -> None:
    app[SERVICES] = services
    app.router.add_post("/api/v1/pcr-results", push_pcr_results)
