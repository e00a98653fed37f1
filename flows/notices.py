"""Texts of the messages the outbox carries, rendered in the recipient's language."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flows.formatting import local_time
from flows.i18n import text


class UnknownNotice(KeyError):
    pass


def render_notice(kind: str, params: dict[str, Any], lang: str, tz: ZoneInfo) -> str:
    if kind == "exposure":
        return text(
            lang,
            "notices.exposure",
            venue=params["venue"],
            start=local_time(datetime.fromisoformat(params["start"]), tz),
            end=local_time(datetime.fromisoformat(params["end"]), tz),
        )
    if kind == "account_moved":
        return text(lang, "notices.account_moved", iin=params["iin"])
    if kind == "dispute_resolved":
        key = "notices.dispute_upheld" if params["upheld"] else "notices.dispute_rejected"
        return text(lang, key, id=params["id"], note=params["note"])
    raise UnknownNotice(kind)
