"""Passings judged against the zone version in force at their time, duplicates, counts."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citybots.wiring import Services
from geofence.zones import parse_zones
from services.permits import PermitError, PermitResult
from services.validation import InvalidInput
from tests.factories import add_org, add_pcr, add_permit, add_zone_with_checkpoint, make_iin
from tests.integration.test_zones import zone


async def _checkpoint(services: Services, zone_name: str):  # type: ignore[no-untyped-def]
    return await services.checkpoints.add(
        f"Post {secrets.token_hex(3)}",
        latitude=43.26,
        longitude=76.95,
        zone_kind="quarantine",
        zone_name=zone_name,
        register="roadblock",
        actor="test",
    )


async def test_a_passing_is_flagged_only_while_its_zone_was_restricted(
    services: Services,
) -> None:
    name = f"Lockdown {secrets.token_hex(3)}"
    t1 = datetime(2026, 5, 1, 8, tzinfo=UTC)
    t2 = t1 + timedelta(days=3)
    await services.zones.import_shapes(
        parse_zones(zone(name, 76.90, 0.02)), valid_from=t1, actor="t", source="t"
    )
    await services.zones.import_shapes(
        parse_zones(zone(name, 76.90, 0.04)),
        valid_from=t1 + timedelta(days=1),
        actor="t",
        source="t",
    )
    assert await services.zones.lift("quarantine", name, at=t2, actor="t")
    assert not await services.zones.lift("quarantine", name, at=t2 + timedelta(days=1), actor="t")
    post = await _checkpoint(services, name)
    traveller = make_iin()

    async def passing(at: datetime, direction: str = "in", key: str | None = None):  # type: ignore[no-untyped-def]
        return await services.checkpoints.log_passing(
            post,
            officer=1,
            direction=direction,
            value=traveller,
            at=at,
            update_key=key or secrets.token_hex(8),
        )

    before = await passing(t1 - timedelta(hours=1))
    first_version = await passing(t1 + timedelta(hours=2))
    second_version = await passing(t1 + timedelta(days=1, hours=2))
    leaving = await passing(t1 + timedelta(days=1, hours=3), "out")
    lifted = await passing(t2 + timedelta(hours=1))
    assert (before.restricted, before.flagged, before.zone_version) == (False, False, None)
    assert (first_version.restricted, first_version.flagged, first_version.zone_version) == (
        True,
        True,
        1,
    )
    assert second_version.zone_version == 2
    assert second_version.flagged
    assert (leaving.restricted, leaving.flagged) == (True, False)  # leaving is not flagged
    assert (lifted.restricted, lifted.flagged) == (False, False)
    assert first_version.permit is not None
    assert first_version.permit.result is PermitResult.NONE


async def test_a_permit_holder_is_not_flagged_and_a_retry_logs_once(services: Services) -> None:
    name, post = await add_zone_with_checkpoint(services, f"Post {secrets.token_hex(3)}")
    now = datetime.now(UTC)
    plate = f"{secrets.randbelow(900) + 100} KZA 02"
    await add_permit(services, await add_org(services), plate=plate, register="roadblock")
    kwargs = {"officer": 7, "direction": "in", "value": plate.lower(), "at": now}
    first = await services.checkpoints.log_passing(post, update_key="u-1-" + name, **kwargs)
    again = await services.checkpoints.log_passing(post, update_key="u-1-" + name, **kwargs)
    assert first.id == again.id
    assert first.permit is not None
    assert first.permit.result is PermitResult.VALID
    assert not first.flagged
    stored = await services.checkpoints.pool.fetchval(
        "SELECT count(*) FROM passings WHERE checkpoint_id = $1", post.id
    )
    assert stored == 1
    with pytest.raises(InvalidInput):
        await services.checkpoints.log_passing(post, update_key="u-2", **{**kwargs, "value": "??"})
    tz = ZoneInfo("Asia/Almaty")
    counts = await services.checkpoints.hourly_counts(
        since=now - timedelta(hours=1), until=now + timedelta(hours=1), tz=tz
    )
    mine = [c for c in counts if c.checkpoint == post.name]
    assert [(c.direction, c.passings, c.flagged) for c in mine] == [("in", 1, 0)]


async def test_a_passing_on_a_suspended_permit_is_flagged_either_way_and_logged_so(
    services: Services,
) -> None:
    _, post = await add_zone_with_checkpoint(services, f"Post {secrets.token_hex(3)}")
    driver, plate = make_iin(), f"{secrets.randbelow(900) + 100} KZC 02"
    await add_permit(
        services, await add_org(services), iin=driver, plate=plate, register="roadblock"
    )
    await add_pcr(services, driver, "positive")
    passings = [
        await services.checkpoints.log_passing(
            post,
            officer=7,
            direction=direction,
            value=value,
            at=datetime.now(UTC),
            update_key=secrets.token_hex(8),
        )
        for direction, value in (("in", plate), ("out", driver))
    ]
    for passing in passings:
        assert passing.permit is not None
        assert passing.permit.result is PermitResult.SUSPENDED
        assert passing.flagged
    stored = await services.checkpoints.recent(limit=500, flagged_only=True)
    mine = [r for r in stored if r["checkpoint"] == post.name]
    assert [(r["direction"], r["permit_result"]) for r in mine] == [
        ("out", "suspended"),
        ("in", "suspended"),
    ]


async def test_checkpoints_refuse_bad_definitions(services: Services) -> None:
    with pytest.raises(PermitError, match=r"checkpoint\.bad_zone"):
        await services.checkpoints.add(
            "X", latitude=43.2, longitude=76.9, zone_kind="city", zone_name="Z",
            register="roadblock", actor="t",
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        await services.checkpoints.add(
            "Y", latitude=95.0, longitude=76.9, zone_kind="quarantine", zone_name="Z",
            register="roadblock", actor="t",
        )  # fmt: skip
    post = await _checkpoint(services, "Z")
    with pytest.raises(PermitError, match=r"checkpoint\.name_taken"):
        await services.checkpoints.add(
            post.name, latitude=43.2, longitude=76.9, zone_kind="quarantine", zone_name="Z",
            register="roadblock", actor="t",
        )  # fmt: skip
