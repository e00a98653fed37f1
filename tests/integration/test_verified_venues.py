"""Verified venues on PostgreSQL and Redis: who may look people up by IIN at a venue, the
head's proof, and the watch that flags a staff account looking up far more people than
its venue has visitors."""

import logging

import pytest

from citybots.wiring import Services
from services.staff_lookups import FLAG_ACTION, FLAG_MIN_LOOKUPS
from services.venues import LookupAccess, LookupRefused, VenueError
from services.visits import CheckIn
from tests.factories import add_org, make_iin, make_phone, make_venue, tg_user_id, verify_venue


async def test_only_the_verified_owner_and_the_staff_they_invited_may_look_people_up(
    services: Services,
) -> None:
    owner, early, late, stranger, added = (tg_user_id() for _ in range(5))
    venue = await make_venue(services, owner=owner)
    await services.venues.accept_invite(
        await services.venues.create_invite(venue.id, owner), early
    )
    for person in (owner, early):
        assert await services.venues.lookup_access(venue.id, person) is LookupAccess.UNVERIFIED
    await verify_venue(services, venue.id)
    await services.venues.accept_invite(await services.venues.create_invite(venue.id, owner), late)
    for person in (owner, early, late):
        assert await services.venues.lookup_access(venue.id, person) is LookupAccess.ALLOWED
    assert await services.venues.lookup_access(venue.id, stranger) is LookupAccess.NOT_STAFF
    # On the staff without an invite of the verified owner (written by hand, or by an
    # owner the venue was not verified with): no look-ups.
    await services.venues.pool.execute(
        "INSERT INTO venue_staff (venue_id, tg_user_id, role) VALUES ($1, $2, 'staff')",
        venue.id,
        added,
    )
    assert await services.venues.lookup_access(venue.id, added) is LookupAccess.NOT_INVITED
    with pytest.raises(LookupRefused) as refused:
        await services.visits.staff_check_in(make_iin(), venue, staff_tg_user_id=added)
    assert refused.value.access is LookupAccess.NOT_INVITED


async def test_the_head_of_the_registered_organisation_verifies_the_venue_by_phone(
    services: Services,
) -> None:
    phone = make_phone()
    bin_ = await add_org(services, head_phone=phone)
    owner, staff = tg_user_id(), tg_user_id()
    venue = await make_venue(services, owner=owner, bin_=bin_)
    await services.venues.accept_invite(
        await services.venues.create_invite(venue.id, owner), staff
    )
    with pytest.raises(VenueError) as error:
        await services.venues.verify_by_head(venue.id, staff, phone)
    assert error.value.code == "venue.not_owner"
    with pytest.raises(VenueError) as error:
        await services.venues.verify_by_head(venue.id, owner, make_phone())
    assert error.value.code == "venue.not_head"
    refusals = await services.venues.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'venue.head_refused'",
        f"tg:{owner}",
    )
    assert refusals == 1
    assert not (await services.venues.venue(venue.id)).verified

    verified = await services.venues.verify_by_head(venue.id, owner, phone)
    assert verified.verified
    row = await services.venues.pool.fetchrow(
        "SELECT verified_how, verified_by, verified_owner FROM venues WHERE id = $1", venue.id
    )
    assert tuple(row) == ("head", f"tg:{owner}", owner)
    assert await services.venues.lookup_access(venue.id, staff) is LookupAccess.ALLOWED
    audited = await services.venues.pool.fetchval(
        "SELECT details->>'how' FROM audit_log WHERE action = 'venue.verified' AND subject = $1",
        f"venue:{venue.id}",
    )
    assert audited == "head"


async def test_a_venue_registered_under_an_unknown_bin_is_never_verified_by_a_phone(
    services: Services,
) -> None:
    owner = tg_user_id()
    venue = await make_venue(services, owner=owner)  # the factory's BIN: on no register
    with pytest.raises(VenueError) as error:
        await services.venues.verify_by_head(venue.id, owner, make_phone())
    assert error.value.code == "venue.not_head"
    assert not (await services.venues.venue(venue.id)).verified


async def test_a_staff_check_in_leaves_a_stay_elsewhere_open_and_a_qr_scan_still_moves_it(
    services: Services,
) -> None:
    owner = tg_user_id()
    here = await make_venue(services, owner=owner, verified=True)
    there = await make_venue(services)
    iin = make_iin()
    await services.visits.check_in(iin, there, entrance_id=None, via="qr")
    by_staff = await services.visits.staff_check_in(iin, here, staff_tg_user_id=owner)
    assert by_staff.outcome is CheckIn.ELSEWHERE
    assert by_staff.visit_id is None
    assert await services.visits.occupancy(there.id) == 1
    assert await services.visits.occupancy(here.id) == 0
    audited = await services.venues.pool.fetchval(
        "SELECT details FROM audit_log WHERE actor = $1 AND action = 'status.lookup'"
        " ORDER BY id DESC LIMIT 1",
        f"staff:{owner}",
    )
    assert audited == {"venue_id": here.id, "elsewhere": True}
    by_qr = await services.visits.check_in(iin, here, entrance_id=None, via="qr")
    assert (by_qr.outcome, by_qr.moved_from) == (CheckIn.ADMITTED, there.name)


async def test_the_watch_flags_a_staff_account_whose_look_ups_far_exceed_its_venues_visitors(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    snoop, busy = tg_user_id(), tg_user_id()
    quiet = await make_venue(services, owner=snoop, verified=True)
    crowded = await make_venue(services, owner=busy, verified=True)
    looked_up = [make_iin() for _ in range(FLAG_MIN_LOOKUPS)]
    for venue in (quiet, crowded):
        for _ in range(2 if venue is quiet else FLAG_MIN_LOOKUPS):
            await services.visits.check_in(make_iin(), venue, entrance_id=None, via="qr")
    for iin in looked_up:
        await services.visits.staff_check_in(iin, quiet, staff_tg_user_id=snoop)
        await services.visits.staff_check_in(make_iin(), crowded, staff_tg_user_id=busy)

    counts = {
        (c.staff, c.venue_id): c
        for c in await services.staff_lookups.counts(
            since=await services.venues.pool.fetchval("SELECT now() - interval '1 hour'"),
            until=await services.venues.pool.fetchval("SELECT now() + interval '1 hour'"),
        )
    }
    assert counts[(f"staff:{snoop}", quiet.id)].check_ins == FLAG_MIN_LOOKUPS
    assert counts[(f"staff:{snoop}", quiet.id)].visitors == 2
    assert counts[(f"staff:{busy}", crowded.id)].visitors == FLAG_MIN_LOOKUPS

    with caplog.at_level(logging.WARNING, logger="services.staff_lookups"):
        flagged = await services.staff_lookups.flag_unusual()
    mine = [f for f in flagged if f.venue_id in (quiet.id, crowded.id)]
    assert [(f.staff, f.venue_id, f.lookups, f.visitors) for f in mine] == [
        (f"staff:{snoop}", quiet.id, FLAG_MIN_LOOKUPS, 2)
    ]
    row = await services.venues.pool.fetchrow(
        "SELECT subject, details FROM audit_log WHERE action = $1 AND subject = $2",
        FLAG_ACTION,
        f"staff:{snoop}",
    )
    assert row["details"]["venue_id"] == quiet.id
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"staff:{snoop}" in logged
    assert not any(iin in logged or iin in str(row["details"]) for iin in looked_up)
    # Flagged once a day, not at every run of the job.
    again = await services.staff_lookups.flag_unusual()
    assert not [f for f in again if f.venue_id == quiet.id]
    shown = await services.staff_lookups.flagged(
        since=await services.venues.pool.fetchval("SELECT now() - interval '1 hour'")
    )
    assert [f.venue for f in shown if f.staff == f"staff:{snoop}"] == [quiet.name]
