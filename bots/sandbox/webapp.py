"""Mini Apps in the sandbox: ``initData`` signed as Telegram signs it, so that a bot's
Mini App can be opened beside the chat and every flow tried offline.

Telegram's rule (core.telegram.org/bots/webapps, "Validating data received via the Mini
App"): the fields sorted by name as ``key=value`` lines, HMAC-SHA256 with the key
HMAC-SHA256("WebAppData", bot token), in hex, as ``hash``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode


def sign_init_data(
    token: str,
    user: dict[str, Any],
    *,
    start_param: str | None = None,
    auth_date: int | None = None,
) -> str:
    """The ``initData`` query string Telegram would hand a Mini App opened by ``user``
    (from a direct link carrying ``start_param``, or from a button without one)."""
    fields = {
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
    }
    if start_param:
        fields |= {
            "start_param": start_param,
            "chat_type": "sender",
            "chat_instance": str(secrets.randbits(62)),
        }
    else:
        fields["query_id"] = "AAH" + secrets.token_urlsafe(12)
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


def launch_url(page: str, init_data: str) -> str:
    """The Mini App's page as Telegram loads it: initData in the fragment."""
    base = page.split("#", 1)[0]
    return (
        f"{base}#tgWebAppData={quote(init_data, safe='')}&tgWebAppVersion=8.0&tgWebAppPlatform=web"
    )
