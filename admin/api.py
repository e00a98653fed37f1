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
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from services.container import Services
from services.fhir_results import FhirError, bundle_rows
from services.registry_rows import ImportReport, Rejected
from services.validation import loads_json

SERVICES: web.AppKey[Services] = web.AppKey("services")
MAX_BATCH = 10_000
_FIELDS = ("iin", "sampled_at", "result_at", "result")
FHIR_TYPES = ("application/fhir+json", "application/json+fhir")
Client = TypeVar("Client")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def bearer_key(request: web.Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme == "Bearer" and key.strip() else None


async def api_client(
    request: web.Request, authenticate: Callable[[str], Awaitable[Client | None]]
) -> Client | None:
    """The system that pushes (a laboratory, a dispatch system) whose key the request
    carries as ``Authorization: Bearer <key>``, or None."""
    key = bearer_key(request)
    return await authenticate(key) if key else None


def key_required(client: str) -> web.Response:
    """The 401 answer to a push without a valid key of that kind of client."""
    return json_error(401, f"a valid {client} key is required: Authorization: Bearer <key>")


async def pushed_items(request: web.Request, name: str) -> list[Any] | web.Response:
    """The items of a pushed batch: a JSON list, or an object holding it under ``name``
    (``{"calls": [...]}``); where it is neither, or longer than MAX_BATCH, the json_error
    to answer with (400, 413)."""
    try:
        body = loads_json(await request.read())
    except ValueError:  # not JSON, not UTF-8, or nested past JSON_MAX_DEPTH
        return json_error(400, f'the body must be JSON: a list of {name}, or {{"{name}": [...]}}')
    items = body.get(name) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return json_error(400, f'the body must be a list of {name}, or {{"{name}": [...]}}')
    if len(items) > MAX_BATCH:
        return json_error(413, f"at most {MAX_BATCH} {name} per request")
    return items


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


def report_answer(report: ImportReport) -> web.Response:
    """A push's answer: the import's report as JSON."""
    return web.Response(text=json.dumps(report.as_dict()), content_type="application/json")


def _row(item: Any, laboratory: str) -> list[str] | None:
    if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in _FIELDS):
        return None
    return [item[f] for f in _FIELDS] + [laboratory]


async def push_pcr_results(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    lab = await api_client(request, services.labs.authenticate)
    if lab is None:
        return key_required("laboratory")
    fhir = request.content_type in FHIR_TYPES
    refused: list[Rejected] = []
    if fhir:
        try:
            body = loads_json(await request.read())
        except ValueError:
            return json_error(400, "the body must be JSON: a FHIR Bundle of Observations")
        entries = body.get("entry") if isinstance(body, dict) else None
        if isinstance(entries, list) and len(entries) > MAX_BATCH:
            return json_error(413, f"at most {MAX_BATCH} entries per Bundle")
        try:  # about 0.3 ms an Observation: off the event loop, which serves the bots
            rows, refused = await asyncio.to_thread(bundle_rows, body, lab.name)
        except FhirError as error:
            return json_error(400, str(error))
    else:
        items = await pushed_items(request, "results")
        if isinstance(items, web.Response):
            return items
        rows = numbered_rows(items, partial(_row, laboratory=lab.name))
    report = await services.importer.import_rows(
        "pcr",
        rows,
        source=f"lab:{lab.name}",
        actor=f"lab:{lab.id}",
        about={"format": "fhir" if fhir else "json", "bytes": request.content_length},
        refused=refused,
    )
    return report_answer(report)


def setup_api(app: web.Application, services: Services) -> None:
    app[SERVICES] = services
    app.router.add_post("/api/v1/pcr-results", push_pcr_results)
