import asyncio

import pytest

from services.coalesce import Coalescer


async def test_look_ups_made_together_are_answered_by_one_bulk_call_in_order() -> None:
    calls: list[list[int]] = []

    async def bulk(keys: list[int]) -> list[int]:
        calls.append(keys)
        return [key * 10 for key in keys]

    coalescer = Coalescer(bulk)
    assert await asyncio.gather(*(coalescer(k) for k in (3, 1, 3))) == [30, 10, 30]
    assert calls == [[3, 1, 3]]
    assert await coalescer(2) == 20
    assert calls == [[3, 1, 3], [2]]


async def test_a_failing_bulk_call_fails_every_caller_of_its_round_only() -> None:
    failing = True

    async def bulk(keys: list[str]) -> list[str]:
        if failing:
            raise ConnectionError("down")
        return keys

    coalescer = Coalescer(bulk)
    results = await asyncio.gather(coalescer("a"), coalescer("b"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    failing = False
    assert await coalescer("c") == "c"


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    release = asyncio.Event()

    async def bulk(keys: list[int]) -> list[int]:
        await release.wait()
        return keys

    coalescer = Coalescer(bulk)
    impatient = asyncio.create_task(coalescer(1))
    patient = asyncio.create_task(coalescer(2))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    assert await patient == 2
    with pytest.raises(asyncio.CancelledError):
        await impatient
