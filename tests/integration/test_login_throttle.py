"""The login throttle in Redis: colleagues behind one address log in at once; guesses
beyond the free failures run one at a time and then wait."""

import asyncio
import secrets

from redis.asyncio import Redis

from services.login_throttle import ACCOUNT_FREE, LoginThrottle


async def test_people_behind_one_address_log_in_at_the_same_moment(redis: Redis) -> None:
    throttle = LoginThrottle(redis)
    address = f"198.51.100.{secrets.randbelow(250)}-{secrets.token_hex(3)}"
    attempts = await asyncio.gather(
        *(throttle.begin(address, f"user-{i}-{secrets.token_hex(3)}", None) for i in range(5))
    )
    assert all(attempt.allowed for attempt in attempts)
    for attempt in attempts:
        await throttle.succeeded(attempt)
    assert (await throttle.begin(address, "someone-else", None)).allowed


async def test_parallel_guesses_beyond_the_free_failures_go_one_at_a_time(redis: Redis) -> None:
    throttle = LoginThrottle(redis)
    account = f"admin-{secrets.token_hex(3)}"
    for _ in range(ACCOUNT_FREE - 1):
        attempt = await throttle.begin("203.0.113.9", account, None)
        assert attempt.allowed
        await throttle.failed(attempt)
    guesses = await asyncio.gather(
        *(throttle.begin(f"203.0.113.{i}", account, None) for i in range(10, 20))
    )
    assert sum(guess.allowed for guess in guesses) == 1
    for guess in guesses:
        if guess.allowed:
            await throttle.failed(guess)
    assert not (await throttle.begin("203.0.113.30", account, None)).allowed
