"""The public permit check for the city portal: yes or no only, a look-up quota per
address (the same quotas as staff and officers have, with their 80% warning), every
check audited (under a hash of the address, never the address)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import UTC, datetime

from aiohttp import web
from redis.asyncio import Redis

from admin.templating import html
from presentation.i18n import LANGUAGES, pick_language, text
from presentation.keys import input_error
from services.permits import PermitResult, PermitService
from services.quotas import LookupQuotas
from services.validation import InvalidInput

PUBLIC_PERMITS: web.AppKey[PermitService] = web.AppKey("public_permits")
PUBLIC_REDIS: web.AppKey[Redis] = web.AppKey("public_redis")
PUBLIC_QUOTAS: web.AppKey[LookupQuotas] = web.AppKey("public_quotas")
TRUSTED_PROXIES: web.AppKey[frozenset[str]] = web.AppKey("trusted_proxies")
CLIENT_KEY: web.AppKey[dict[str, bytes]] = web.AppKey("client_key")
CHECKS_PER_HOUR = 30
_KEY = "public-check:key"


def client_network(request: web.Request) -> str:
    """Who is asking, for the rate limit: the address (behind a trusted proxy, the one
    it forwarded), an IPv6 address taken by its /64, as one household has a whole /64."""
    address = request.remote or "unknown"
    if address in request.app[TRUSTED_PROXIES]:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        address = forwarded or address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


async def client_id(request: web.Request) -> str:
    """A keyed hash of the client's network: stable across workers (the key lives in
    Redis), not reversible to an address by hashing every IPv4 address."""
    cache = request.app[CLIENT_KEY]
    if "key" not in cache:  # once per process
        redis = request.app[PUBLIC_REDIS]
        await redis.set(_KEY, secrets.token_hex(32), nx=True)
        key = await redis.get(_KEY)
        assert key is not None
        cache["key"] = key if isinstance(key, bytes) else key.encode()
    network = client_network(request).encode()
    return hmac.new(cache["key"], network, hashlib.sha256).hexdigest()[:16]


def _language(request: web.Request) -> str:
    asked = request.query.get("lang")
    accepted = request.headers.get("Accept-Language", "").split(",")[0].strip()
    return pick_language(asked, accepted, default="ru")


def _page(
    lang: str, *, value: str = "", answer: str = "", answer_class: str = "", status: int = 200
) -> web.Response:
    return html(
        "permit_check.html",
        status=status,
        lang=lang,
        t=lambda key, **params: text(lang, key, **params),
        languages=[(code, text(code, "language_name")) for code in LANGUAGES],
        value=value,
        answer=answer,
        answer_class=answer_class,
        checks_per_hour=CHECKS_PER_HOUR,
    )


async def check_form(request: web.Request) -> web.Response:
    return _page(_language(request))


async def check(request: web.Request) -> web.Response:
    lang = _language(request)
    form = await request.post()
    value = str(form.get("value", "")).strip()[:40]
    client = await client_id(request)
    if not await request.app[PUBLIC_QUOTAS].allow("public-check", client):
        return _page(
            lang,
            value=value,
            answer=text(lang, "public_check.rate_limited"),
            answer_class="error",
            status=429,
        )
    permits = request.app[PUBLIC_PERMITS]
    now = datetime.now(UTC)
    actor = f"public:{client}"
    try:
        compact = value.replace(" ", "")
        if compact.isdigit() and len(compact) == 12:
            result = await permits.check_iin(compact, at=now, actor=actor)
        else:
            result = await permits.check_plate(value, at=now, actor=actor)
    except InvalidInput as error:
        return _page(
            lang,
            value=value,
            answer=input_error(lang, error.code),
            answer_class="error",
            status=400,
        )
    if result.result is PermitResult.VALID and not result.loose:  # a typo is not a yes
        return _page(lang, value=value, answer=text(lang, "public_check.yes"), answer_class="yes")
    return _page(lang, value=value, answer=text(lang, "public_check.no"), answer_class="no")


def setup_public(
    app: web.Application,
    permits: PermitService,
    redis: Redis,
    trusted_proxies: frozenset[str] = frozenset(),
) -> None:
    app[PUBLIC_PERMITS] = permits
    app[PUBLIC_REDIS] = redis
    app[PUBLIC_QUOTAS] = LookupQuotas(permits.pool, redis, per_hour=CHECKS_PER_HOUR)
    app[TRUSTED_PROXIES] = trusted_proxies
    app[CLIENT_KEY] = {}
    app.router.add_get("/check", check_form)
    app.router.add_post("/check", check)
