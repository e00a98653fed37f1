"""The web app's one jinja2 environment (autoescaped HTML templates in admin/templates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

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
