"""Organisations' register and permit checks on real PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from citybots.wiring import Services
from services.permits import PermitResult
from services.registry_rows import read_csv_lines
from services.validation import InvalidInput
from tests.factories import add_contact, add_org, add_pcr, add_permit, make_bin, make_iin


async def test_the_organisations_register_imports_checks_and_updates(
    services: Services,
) -> None:
    good, other = make_bin(), make_bin()
    csv_text = (
        "bin,name,activity_code,head_phone,allowed\n"
        f"{good},Almaty Bread LLP,10.71,+7 701 555 01 01,yes\n"
        f"{other},Night Club LLP,93.29,+77015550102,no\n"
        "900101300016,Typo LLP,10.71,+77015550103,yes\n"
        f"{make_bin()},,10.71,+77015550104,yes\n"
        f"{make_bin()},Odd LLP,10.71,+77015550105,maybe\n"
    )
    rows = list(read_csv_lines(csv_text.splitlines(keepends=True)))
    report = await services.importer.import_rows("orgs", rows, source="test")
    assert (report.accepted, len(report.rejected)) == (2, 3)
    assert [r.code for r in report.rejected] == ["bin.check_digit", "org.name", "org.allowed"]
    again = await services.importer.import_rows("orgs", rows, source="test")
    assert again.accepted == 0
    changed = csv_text.replace(
        "Night Club LLP,93.29,+77015550102,no", "Night Club LLP,93.29,+77015550102,yes"
    )
    rows = list(read_csv_lines(changed.splitlines(keepends=True)))
    updated = await services.importer.import_rows("orgs", rows, source="test")
    assert updated.accepted == 1
    allowed = await services.permits.pool.fetchval(
        "SELECT allowed FROM organisations WHERE bin = $1", other
    )
    assert allowed is True


async def test_checks_by_iin_say_valid_expired_revoked_pending_or_none(services: Services) -> None:
    bin_ = await add_org(services)
    now = datetime.now(UTC)
    cases = {
        PermitResult.VALID: {},
        PermitResult.EXPIRED: {"start": timedelta(days=-5), "end": timedelta(days=-1)},
        PermitResult.REVOKED: {"state": "revoked"},
        PermitResult.PENDING: {"state": "pending"},
        PermitResult.NOT_YET: {"start": timedelta(days=1)},
    }
    for expected, options in cases.items():
        iin = make_iin()
        await add_permit(services, bin_, iin=iin, **options)
        check = await services.permits.check_iin(iin, at=now, actor="test:officer")
        assert check.result is expected
        assert check.organisation == "Test LLP"
    nobody = await services.permits.check_iin(make_iin(), at=now, actor="test:officer")
    assert nobody.result is PermitResult.NONE
    with pytest.raises(InvalidInput):
        await services.permits.check_iin("12345", at=now, actor="test:officer")
    audited = await services.permits.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = 'test:officer' AND action = 'permits.check'"
    )
    assert audited >= 6


async def test_plates_typed_with_cyrillic_letters_or_typos_match_and_say_so(
    services: Services,
) -> None:
    bin_ = await add_org(services)
    now = datetime.now(UTC)
    digits = f"{secrets.randbelow(900) + 100}"
    plate = f"{digits} ABC 02"
    await add_permit(services, bin_, plate=plate)
    exact = await services.permits.check_plate(f"{digits}АВС02", at=now, actor="test")
    assert exact.result is PermitResult.VALID
    assert not exact.loose
    loose = await services.permits.check_plate(f"{digits} A8C 2", at=now, actor="test")
    assert loose.result is PermitResult.VALID
    assert loose.loose
    assert loose.matched_plate == f"{digits}ABC02"
    unknown = await services.permits.check_plate("999 ZZZ 01", at=now, actor="test")
    assert unknown.result is PermitResult.NONE


async def test_the_permit_in_force_is_found_whatever_else_exists(services: Services) -> None:
    bin_ = await add_org(services)
    now = datetime.now(UTC)
    iin = make_iin()
    await add_permit(services, bin_, iin=iin, start=timedelta(hours=-1), end=timedelta(days=1))
    for week in range(1, 25):  # permits issued ahead, each for a later week
        start = timedelta(days=7 * week)
        await add_permit(services, bin_, iin=iin, start=start, end=start + timedelta(days=7))
    check = await services.permits.check_iin(iin, at=now, actor="test")
    assert check.result is PermitResult.VALID
    # A city permit is not a roadblock permit.
    roadblock = await services.permits.check_iin(iin, at=now, actor="test", register="roadblock")
    assert roadblock.result is PermitResult.NONE
    # A stale application does not hide a permit revoked today.
    other = make_iin()
    await add_permit(services, bin_, iin=other, state="revoked")
    await add_permit(
        services,
        bin_,
        iin=other,
        state="pending",
        start=timedelta(days=-40),
        end=-timedelta(days=30),
    )
    revoked = await services.permits.check_iin(other, at=now, actor="test")
    assert revoked.result is PermitResult.REVOKED
    # The organisation refused after a re-import: its permits no longer count.
    await services.permits.pool.execute(
        "UPDATE organisations SET allowed = false WHERE bin = $1", bin_
    )
    refused = await services.permits.check_iin(iin, at=now, actor="test")
    assert refused.result is PermitResult.REVOKED


def _plate() -> str:
    return f"{secrets.randbelow(900) + 100} KZB 02"


async def test_a_permit_is_suspended_while_its_holder_is_red_and_valid_again_when_it_lifts(
    services: Services,
) -> None:
    bin_ = await add_org(services)
    walker, driver, plate, vehicle = make_iin(), make_iin(), _plate(), _plate()
    await add_permit(services, bin_, iin=walker)
    await add_permit(services, bin_, iin=driver, plate=plate)  # a driver with the car
    await add_permit(services, bin_, plate=vehicle)  # the vehicle alone names nobody
    now = datetime.now(UTC)
    assert (await services.permits.check_iin(walker, at=now, actor="t")).result is (
        PermitResult.VALID
    )
    # Positive results: the walker's isolation is over (15 days ago) but no negative
    # result lifted it yet; the driver's has just begun.
    await add_pcr(services, walker, "positive", result_at=now - timedelta(days=15))
    await add_pcr(services, driver, "positive", result_at=now - timedelta(hours=2))
    now = datetime.now(UTC)
    suspended = await services.permits.check_iin(walker, at=now, actor="test:suspended")
    assert suspended.result is PermitResult.SUSPENDED
    assert suspended.organisation == "Test LLP"
    by_plate = await services.permits.check_plate(plate, at=now, actor="test:suspended")
    assert by_plate.result is PermitResult.SUSPENDED
    by_vehicle = await services.permits.check_plate(vehicle, at=now, actor="t")
    assert by_vehicle.result is PermitResult.VALID
    audited = await services.permits.pool.fetch(
        "SELECT details::text FROM audit_log WHERE actor = 'test:suspended'"
        " AND action = 'permits.check'"
    )
    assert len(audited) == 2
    assert all("suspended" in d[0] and "red" not in d[0] for d in audited)

    # A negative result after the isolation's end lifts the status, and the permit is
    # valid again by itself; before the end, a negative result changes nothing.
    await add_pcr(services, walker, "negative")
    await add_pcr(services, driver, "negative")
    now = datetime.now(UTC)
    assert (await services.permits.check_iin(walker, at=now, actor="t")).result is (
        PermitResult.VALID
    )
    assert (await services.permits.check_plate(plate, at=now, actor="t")).result is (
        PermitResult.SUSPENDED
    )
    assert (await services.permits.check_iin(driver, at=now, actor="t")).result is (
        PermitResult.SUSPENDED
    )


async def test_a_registered_contacts_permit_is_suspended_the_same_way_until_lifted(
    services: Services,
) -> None:
    bin_ = await add_org(services)
    contact, recent = make_iin(), make_iin()
    await add_permit(services, bin_, iin=contact, register="roadblock")
    await add_permit(services, bin_, iin=recent)
    await add_contact(services, contact, days=14, ago=timedelta(days=15))  # isolation over
    await add_contact(services, recent)
    now = datetime.now(UTC)
    yellow = await services.permits.check_iin(contact, at=now, actor="t", register="roadblock")
    assert yellow.result is PermitResult.SUSPENDED
    assert (await services.permits.check_iin(recent, at=now, actor="t")).result is (
        PermitResult.SUSPENDED
    )
    await add_pcr(services, contact, "negative")
    await add_pcr(services, recent, "negative")
    now = datetime.now(UTC)
    lifted = await services.permits.check_iin(contact, at=now, actor="t", register="roadblock")
    assert lifted.result is PermitResult.VALID
    assert (await services.permits.check_iin(recent, at=now, actor="t")).result is (
        PermitResult.SUSPENDED
    )


async def test_a_suspended_permit_does_not_hide_another_valid_one_for_the_same_vehicle(
    services: Services,
) -> None:
    plate, driver = _plate(), make_iin()
    await add_permit(services, await add_org(services), iin=driver, plate=plate)
    await add_permit(services, await add_org(services), plate=plate, register="roadblock")
    await add_pcr(services, driver, "positive")
    now = datetime.now(UTC)
    assert (await services.permits.check_plate(plate, at=now, actor="t")).result is (
        PermitResult.VALID
    )
    city = await services.permits.check_plate(plate, at=now, actor="t", register="city")
    assert city.result is PermitResult.SUSPENDED
