"""The panel's login throttle: growing delays after failed logins, per client address and
per account, never a hard lock.

A few failures are free; after them each attempt must wait twice as long as the last
(1 s, 2 s, 4 s ... up to a cap), counted in Redis (lost counters only forgive). The
rightful user keeps a way in while a stranger hammers their account: a device that once
logged in to the account carries a signed device token, and that device is throttled on
its own count instead of the account's and the address's. A good login clears the
account's (and the device's) count. Attempts in flight count as failures until they end:
while they stay within a counter's free failures they run side by side (colleagues behind
one address logging in at once), beyond them one at a time, so parallel guesses do not
slip through between the check and the count."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis

ACCOUNT_FREE = 3  # failures per account (or per known device) before the delays start
ADDRESS_FREE = 10  # failures per client address before the delays start
MAX_DELAY = timedelta(minutes=5)
FORGET_AFTER = timedelta(minutes=15)  # a counter idle this long starts again at zero
_BUSY = timedelta(seconds=30)  # how long an attempt may hold its counters (a crash)
_KEY = "panel-login:device-key"


@dataclass(frozen=True)
class Attempt:
    """The counters one login attempt is judged by; ``keys`` are held while it runs."""

    keys: tuple[str, ...]
    wait: timedelta  # zero: go ahead (then failed() or succeeded()); else wait this long
    account: str  # the account's own counter, cleared by a good login from any device

    @property
    def allowed(self) -> bool:
        return self.wait <= timedelta(0)


def delay_after(failures: int, free: int) -> timedelta:
    """How long after the last failure the next attempt must wait."""
    if failures < free:
        return timedelta(0)
    return min(MAX_DELAY, timedelta(seconds=2 ** min(failures - free, 20)))


class LoginThrottle:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._key: bytes | None = None

    async def _secret(self) -> bytes:
        if self._key is None:
            await self.redis.set(_KEY, secrets.token_hex(32), nx=True)
            raw = await self.redis.get(_KEY)
            assert raw is not None
            self._key = raw if isinstance(raw, bytes) else raw.encode()
        return self._key

    async def device_token(self, username: str) -> str:
        """A new token for a device that just logged in as ``username``."""
        device = secrets.token_urlsafe(12)
        return f"{device}.{await self._sign(username, device)}"

    async def device_of(self, token: str, username: str) -> str | None:
        """The device id a token vouches for, for this username; None for a forged one,
        or one issued for another account."""
        device, _, signature = token.partition(".")
        if not device or len(token) > 200:
            return None
        expected = await self._sign(username, device)
        return device if hmac.compare_digest(signature.encode(), expected.encode()) else None

    async def _sign(self, username: str, device: str) -> str:
        message = f"{username}\x00{device}".encode()
        return hmac.new(await self._secret(), message, hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def counters(address: str, username: str, device: str | None) -> tuple[tuple[str, int], ...]:
        """The counters an attempt is judged by, each with its free failures: the client
        address's and the account's; from a device that logged in to this account before,
        the device's alone (a stranger's guesses elsewhere, or at the same address, do
        not slow it down)."""
        if device:
            return ((f"panel-login:device:{device}", ACCOUNT_FREE),)
        return (
            (f"panel-login:net:{address}", ADDRESS_FREE),
            (f"panel-login:user:{username}", ACCOUNT_FREE),
        )

    async def begin(self, address: str, username: str, device: str | None) -> Attempt:
        """Judge an attempt before the password is checked."""
        counters = self.counters(address, username, device)
        keys = tuple(key for key, _ in counters)
        account = f"panel-login:user:{username}"
        now = time.time()
        wait = timedelta(0)
        known: dict[str, int] = {}
        for key, free in counters:
            failures, last = await self.redis.hmget(key, ["n", "at"])
            known[key] = int(failures or 0)
            if failures is None:
                continue
            due = float(last or 0) + delay_after(int(failures), free).total_seconds()
            wait = max(wait, timedelta(seconds=max(0.0, due - now)))
        if wait > timedelta(0):
            return Attempt(keys, wait, account)
        held: list[str] = []
        for key, free in counters:
            in_flight = await self.redis.incr(f"{key}:busy")
            await self.redis.expire(f"{key}:busy", _BUSY)
            held.append(key)
            if in_flight > 1 and known[key] + in_flight > free:
                # Beyond the free failures if these all failed: one at a time.
                await self._release(held)
                return Attempt(keys, timedelta(seconds=1), account)
        return Attempt(keys, timedelta(0), account)

    async def failed(self, attempt: Attempt) -> None:
        """Count a failed attempt on each of its counters, and release them."""
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in attempt.keys:
                pipe.hincrby(key, "n", 1)
                pipe.hset(key, "at", str(now))
                pipe.expire(key, int((FORGET_AFTER + MAX_DELAY).total_seconds()))
            await pipe.execute()
        await self._release(list(attempt.keys))

    async def succeeded(self, attempt: Attempt) -> None:
        """A good login clears the account's count (and the device's); the address's
        stays, so that one valid account does not wash an address guessing at others."""
        await self.redis.delete(*(k for k in attempt.keys if ":net:" not in k), attempt.account)
        await self._release(list(attempt.keys))

    async def _release(self, keys: list[str]) -> None:
        for key in keys:
            if await self.redis.decr(f"{key}:busy") <= 0:
                await self.redis.delete(f"{key}:busy")
