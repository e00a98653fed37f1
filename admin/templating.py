"""The web app's one jinja2 environment (autoescaped HTML templates in admin/templates)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.exports import spreadsheet_safe

templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)


def html(name: str, *, status: int = 200, **context: Any) -> web.Response:
    """A rendered page; never cached (pages may carry personal data)."""
    return web.Response(
        text=templates.get_template(name).render(**context),
        content_type="text/html",
        status=status,
        headers={"Cache-Control": "no-store"},
    )


def csv_download(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> web.Response:
    """A CSV attachment (UTF-8 with a BOM, for Excel) whose every cell is spreadsheet-safe:
    nothing in it can run as a formula."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return web.Response(
        body=out.getvalue().encode("utf-8-sig"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
