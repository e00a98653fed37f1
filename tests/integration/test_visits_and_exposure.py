import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from citybots.wiring import Services
from services.citizens import LinkOutcome
from services.status import Colour
from services.venues import CodeState, LookupAccess, LookupRefused, VenueError
from services.visits import CheckIn, CheckInRequest, StaffCheckOut
from tests.conftest import new_database
from tests.factories import (
    add_contact,
    add_pcr,
    add_stay,
    make_citizen,
    make_iin,
    make_phone,
    make_venue,
    registered_phone,
    stayed_together,
    tg_user_id,
)


async def test_green_and_blue_are_admitted_red_and_yellow_refused_and_stored(
    services: Services,
) -> None:
    venue = await make_venue(services)
    blue, green, yellow, red = (make_iin() for _ in range(4))
    await add_pcr(services, green, "negative")
    await add_contact(services, yellow)
    await add_pcr(services, red, "positive")
    for iin, expected in (
        (blue, CheckIn.ADMITTED),
        (green, CheckIn.ADMITTED),
        (yellow, CheckIn.REFUSED),
        (red, CheckIn.REFUSED),
    ):
        result = await services.visits.check_in(iin, venue, entrance_id=None, via="qr")
        assert result.outcome is expected, iin
    assert await services.visits.occupancy(venue.id) == 2
    refused = await services.visits.pool.fetchval(
        "SELECT count(*) FROM visits WHERE venue_id = $1 AND NOT admitted", venue.id
    )
    assert refused == 2


async def test_check_ins_find_stays_by_index_even_when_visits_looked_empty_at_planning(
    server_urls: tuple[str, str],
) -> None:
    """A new deployment's first check-ins plan the function's queries while `visits` is
    empty; those plans are kept for the connection, so they must not be sequential scans
    (which read the whole table on every scan once it has grown)."""
    async with new_database(server_urls[0], "citybots_plans") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM ANALYZE visits")  # known empty: the worst case
            venues = [
                await conn.fetchval(
                    "INSERT INTO venues (bin, name, category) VALUES ('971240001315', $1, 'food') "
                    "RETURNING id",
                    name,
                )
                for name in ("Plan test one", "Plan test two")
            ]
            people = [make_iin() for _ in range(4)]
            async with conn.transaction():
                for round_ in range(6):  # past the five custom plans: the generic one too
                    for person in people:
                        await conn.fetch(
                            "SELECT * FROM citybots_check_in($1, NULL, $2, NULL, 'qr', NULL, "
                            "'green', true, NULL, false)",
                            venues[round_ % 2],
                            person,
                        )
                scans = await conn.fetchval(
                    "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'visits'"
                )
                stays = await conn.fetchval("SELECT count(*) FROM visits WHERE admitted")
            assert stays == 24
            assert scans == 0
        finally:
            await conn.close()


async def test_a_rescan_and_simultaneous_scans_make_one_visit(services: Services) -> None:
    venue = await make_venue(services)
    iin = make_iin()
    results = await asyncio.gather(
        *(services.visits.check_in(iin, venue, entrance_id=None, via="qr") for _ in range(5))
    )
    assert sorted(r.outcome.value for r in results) == ["admitted"] + ["already_inside"] * 4
    assert await services.visits.occupancy(venue.id) == 1


async def test_a_check_in_reads_the_persons_own_stay_whatever_the_statistics_say(
    server_urls: tuple[str, str],
) -> None:
    """Statistics gathered while no stay was open (a morning's ANALYZE), then a city
    full of people inside: a check-in still looks up the person's own open stay and the
    venue's, not every open stay in the city."""
    async with new_database(server_urls[0], "citybots_plans") as url:
        conn = await asyncpg.connect(url)
        try:
            venue, other = [
                await conn.fetchval(
                    "INSERT INTO venues (bin, name, category) VALUES ('971240001315', $1, 'food') "
                    "RETURNING id",
                    name,
                )
                for name in ("Plan test busy", "Plan test quiet")
            ]
            await conn.execute(
                "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at, "
                "checked_out_at, checkout_kind) SELECT $1, lpad(g::text, 12, '0'), 'qr', "
                "'green', true, now() - interval '1 day', now() - interval '23 hours', 'scan' "
                "FROM generate_series(1, 3000) g",
                venue,
            )
            await conn.execute("ANALYZE visits")  # no stay open
            await conn.execute(
                "INSERT INTO visits (venue_id, iin, via, status, admitted) SELECT $1, "
                "lpad((10000 + g)::text, 12, '0'), 'qr', 'green', true "
                "FROM generate_series(1, 500) g",
                venue,
            )
            async with conn.transaction():
                for person in (make_iin() for _ in range(10)):
                    await conn.fetch(
                        "SELECT * FROM citybots_check_in($1, NULL, $2, NULL, 'qr', NULL, "
                        "'green', true, NULL, false)",
                        other,
                        person,
                    )
                fetched = await conn.fetchval(
                    "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'visits'"
                )
            assert fetched < 50  # 500 a check-in when every open stay is read
        finally:
            await conn.close()


async def test_the_last_place_is_taken_once_by_concurrent_transactions(
    services: Services,
) -> None:
    """Batches of check-ins are stored side by side: at a venue that refuses when full,
    the second transaction waits for the first and then finds the venue full."""
    venue = await make_venue(services, capacity=1)
    await services.venues.set_capacity(venue.id, 1, "refuse")
    venue = await services.venues.venue(venue.id)
    pool = services.visits.pool
    async with pool.acquire() as one, pool.acquire() as two:
        first = one.transaction()
        await first.start()
        [taken] = await services.visits.check_in_many(
            [CheckInRequest(make_iin(), venue, None, "qr")], one
        )
        second = two.transaction()
        await second.start()
        waiting = asyncio.create_task(
            services.visits.check_in_many([CheckInRequest(make_iin(), venue, None, "qr")], two)
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await first.commit()
        [refused] = await waiting
        await second.commit()
    assert (taken.outcome, refused.outcome) == (CheckIn.ADMITTED, CheckIn.FULL)
    assert await services.visits.occupancy(venue.id) == 1


async def test_entering_another_venue_closes_the_open_stay_first(services: Services) -> None:
    first, second = await make_venue(services), await make_venue(services)
    iin = make_iin()
    await services.visits.check_in(iin, first, entrance_id=None, via="qr")
    moved = await services.visits.check_in(iin, second, entrance_id=None, via="qr")
    assert moved.moved_from == first.name
    assert await services.visits.occupancy(first.id) == 0
    assert await services.visits.check_out(iin, second.id) == second.name
    assert await services.visits.check_out(iin, second.id) is None


async def test_a_full_venue_warns_or_refuses_by_its_setting(services: Services) -> None:
    venue = await make_venue(services, capacity=1)
    await services.visits.check_in(make_iin(), venue, entrance_id=None, via="qr")
    warned = await services.visits.check_in(make_iin(), venue, entrance_id=None, via="qr")
    assert warned.outcome is CheckIn.ADMITTED
    assert warned.over_capacity
    await services.venues.set_capacity(venue.id, 1, "refuse")
    strict = await services.venues.venue(venue.id)
    full = await services.visits.check_in(make_iin(), strict, entrance_id=None, via="qr")
    assert full.outcome is CheckIn.FULL


async def test_auto_checkout_closes_forgotten_stays_at_the_venue_time(services: Services) -> None:
    venue = await make_venue(services)
    iin = make_iin()
    await services.visits.check_in(iin, venue, entrance_id=None, via="qr")
    await services.visits.auto_checkout(datetime.now(UTC) + timedelta(hours=3))
    assert (await services.visits.history(iin))[0].checked_out_at is None
    closed = await services.visits.auto_checkout(datetime.now(UTC) + timedelta(hours=4, minutes=1))
    assert closed >= 1
    history = await services.visits.history(iin)
    assert history[0].checkout_kind == "auto"
    assert history[0].checked_out_at is not None
    stay = history[0].checked_out_at - history[0].checked_in_at
    assert stay == timedelta(minutes=venue.auto_checkout_minutes)


async def test_staff_close_one_stay_at_their_own_venue_only(services: Services) -> None:
    here_staff, there_staff = tg_user_id(), tg_user_id()
    here = await make_venue(services, owner=here_staff, verified=True)
    there = await make_venue(services, owner=there_staff, verified=True)
    iin = make_iin()
    await services.visits.check_in(iin, here, entrance_id=None, via="qr")
    with pytest.raises(LookupRefused) as refused:
        await services.visits.staff_check_out(here.id, iin, staff_tg_user_id=there_staff)
    assert refused.value.access is LookupAccess.NOT_STAFF
    assert await services.visits.occupancy(here.id) == 1
    elsewhere = await services.visits.staff_check_out(there.id, iin, staff_tg_user_id=there_staff)
    assert elsewhere is StaffCheckOut.NOT_INSIDE
    assert await services.visits.occupancy(here.id) == 1
    done = await services.visits.staff_check_out(here.id, iin, staff_tg_user_id=here_staff)
    assert done is StaffCheckOut.CHECKED_OUT
    assert (await services.visits.history(iin))[0].checkout_kind == "staff"
    assert await services.visits.occupancy(here.id) == 0


async def test_auto_checkout_closes_each_stay_after_its_own_venues_time(
    services: Services,
) -> None:
    quick = await make_venue(services, auto_checkout_minutes=30)
    usual = await make_venue(services)
    changed = await make_venue(services)
    await services.venues.set_auto_checkout(changed.id, 90)
    at_quick, at_usual, at_changed = make_iin(), make_iin(), make_iin()
    for iin, venue in ((at_quick, quick), (at_usual, usual), (at_changed, changed)):
        await services.visits.check_in(iin, venue, entrance_id=None, via="qr")
    now = datetime.now(UTC)
    await services.visits.auto_checkout(now + timedelta(minutes=29))
    assert await services.visits.occupancy(quick.id) == 1
    await services.visits.auto_checkout(now + timedelta(minutes=31))
    closed = (await services.visits.history(at_quick))[0]
    assert closed.checkout_kind == "auto"
    assert closed.checked_out_at is not None
    assert closed.checked_out_at - closed.checked_in_at == timedelta(minutes=30)
    assert await services.visits.occupancy(usual.id) == 1
    assert await services.visits.occupancy(changed.id) == 1
    await services.visits.auto_checkout(now + timedelta(minutes=91))
    assert await services.visits.occupancy(changed.id) == 0
    assert await services.visits.occupancy(usual.id) == 1


async def test_an_auto_checkout_time_outside_15_minutes_to_24_hours_is_refused(
    services: Services,
) -> None:
    for minutes in (0, 14, 24 * 60 + 1):
        with pytest.raises(VenueError):
            await make_venue(services, auto_checkout_minutes=minutes)
    venue = await make_venue(services)
    with pytest.raises(VenueError):
        await services.venues.set_auto_checkout(venue.id, 10)
    assert (await services.venues.venue(venue.id)).auto_checkout_minutes == 240


async def test_codes_resolve_and_rotating_revokes_the_old_ones(services: Services) -> None:
    venue = await make_venue(services, entrances=("North", "South"))
    codes = await services.venues.codes(venue.id)
    assert len(codes) == 4
    target = await services.venues.resolve(codes[0].token)
    assert target.state is CodeState.VALID
    assert target.venue == venue
    await services.venues.rotate_codes(venue.id)
    assert (await services.venues.resolve(codes[0].token)).state is CodeState.REVOKED
    assert (await services.venues.resolve("in_" + "x" * 22)).state is CodeState.UNKNOWN
    assert (await services.venues.resolve("'; DROP TABLE visits;--")).state is CodeState.UNKNOWN


async def test_linking_needs_the_registered_phone_and_never_takes_an_iin_silently(
    services: Services,
) -> None:
    iin, phone = await registered_phone(services)
    first, second = tg_user_id(), tg_user_id()
    assert (await services.citizens.link(first, iin, make_phone())).outcome is LinkOutcome.NO_MATCH
    unknown = await services.citizens.link(first, make_iin(), phone)
    assert unknown.outcome is LinkOutcome.NO_MATCH  # same answer: existence not revealed
    assert (await services.citizens.link(first, iin, phone)).outcome is LinkOutcome.LINKED
    taken = await services.citizens.link(second, iin, phone)
    assert taken.outcome is LinkOutcome.TAKEN
    moved = await services.citizens.link(second, iin, phone, move=True)
    assert moved.outcome is LinkOutcome.LINKED
    assert await services.citizens.iin_of(first) is None
    pending = await services.outbox.pool.fetchval(
        "SELECT kind FROM outbox WHERE chat_id = $1", first
    )
    assert pending == "account_moved"


async def test_failed_links_are_rate_limited(services: Services) -> None:
    user = tg_user_id()
    outcomes = [
        (await services.citizens.link(user, make_iin(), make_phone())).outcome for _ in range(6)
    ]
    assert outcomes[:5] == [LinkOutcome.NO_MATCH] * 5
    assert outcomes[5] is LinkOutcome.RATE_LIMITED


async def test_after_five_failed_links_the_right_pair_is_refused_too_until_the_hour_ends(
    services: Services,
) -> None:
    iin, phone = await registered_phone(services)
    user = tg_user_id()
    for _ in range(5):
        failed = await services.citizens.link(user, make_iin(), phone)
        assert failed.outcome is LinkOutcome.NO_MATCH
    blocked = await services.citizens.link(user, iin, phone)
    assert blocked.outcome is LinkOutcome.RATE_LIMITED
    assert await services.citizens.iin_of(user) is None
    assert blocked.retry_at is not None
    assert blocked.retry_at.second == 0  # a whole minute, never before the hour is over
    assert datetime.now(UTC) + timedelta(minutes=58) < blocked.retry_at
    assert blocked.retry_at <= datetime.now(UTC) + timedelta(hours=1, minutes=1)
    wrong = await services.citizens.link(user, make_iin(), phone)
    assert (wrong.outcome, wrong.retry_at) == (blocked.outcome, blocked.retry_at)
    await services.citizens.redis.delete(f"rate:link-fail:{user}")  # the hour is over
    assert (await services.citizens.link(user, iin, phone)).outcome is LinkOutcome.LINKED


async def test_a_positive_result_notifies_the_visitors_who_overlapped(services: Services) -> None:
    venue, elsewhere = await make_venue(services), await make_venue(services)
    sick_user, exposed_user, later_user, other_user = (tg_user_id() for _ in range(4))
    sick = await make_citizen(services, sick_user)
    exposed = await make_citizen(services, exposed_user)
    later = await make_citizen(services, later_user)
    other = await make_citizen(services, other_user)
    hour = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    await add_stay(services, sick, venue, hour, hour + timedelta(hours=1))
    await add_stay(
        services, exposed, venue, hour + timedelta(minutes=10), hour + timedelta(hours=2)
    )
    await add_stay(services, other, elsewhere, hour, hour + timedelta(hours=1))
    # came in an hour after the case left: the room's air had long been replaced
    await add_stay(services, later, venue, hour + timedelta(hours=2), hour + timedelta(hours=3))
    await add_pcr(services, sick, "positive")
    notices = [n for n in await services.exposure.notices() if n.venue_id == venue.id]
    assert [n.exposed_iin for n in notices] == [exposed]
    queued = await services.outbox.pool.fetch(
        "SELECT chat_id, params FROM outbox WHERE kind = 'exposure' AND chat_id = ANY($1)",
        [sick_user, exposed_user, later_user, other_user],
    )
    assert [r["chat_id"] for r in queued] == [exposed_user]
    assert queued[0]["params"]["venue"] == venue.name
    assert sick not in str(queued[0]["params"])
    # The same result arriving again (a re-import) adds no second notice.
    again = await services.exposure.on_positive_results(
        [
            await services.outbox.pool.fetchval(
                "SELECT id FROM pcr_results WHERE iin = $1 AND result = 'positive'", sick
            )
        ]
    )
    assert again == 0


async def test_a_positive_result_whose_search_was_missed_is_searched_by_the_catch_up(
    services: Services,
) -> None:
    venue = await make_venue(services)
    sick_user, exposed_user = tg_user_id(), tg_user_id()
    sick = await make_citizen(services, sick_user)
    exposed = await make_citizen(services, exposed_user)
    await stayed_together(services, venue, [sick, exposed], hours_ago=3)
    # Stored, and then the worker died (or Redis failed) before the search ran; the
    # laboratory's retry is a duplicate, so nothing else would ever search it.
    await services.outbox.pool.execute(
        "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory) "
        "VALUES ($1, now() - interval '1 day', now(), 'positive', 'Lab')",
        sick,
    )
    assert await services.exposure.catch_up(settled=timedelta(0)) >= 1
    notices = [n for n in await services.exposure.notices() if n.venue_id == venue.id]
    assert [n.exposed_iin for n in notices] == [exposed]
    assert await services.exposure.catch_up(settled=timedelta(0)) == 0
    assert [
        n.exposed_iin for n in await services.exposure.notices() if n.venue_id == venue.id
    ] == [exposed]


async def test_a_dispute_is_decided_with_who_and_why_and_the_citizen_is_told(
    services: Services,
) -> None:
    user = tg_user_id()
    iin = await make_citizen(services, user)
    await add_contact(services, iin, days=14)
    assert (await services.statuses.status(iin)).colour is Colour.YELLOW
    dispute_id = await services.disputes.open(user, iin, "yellow", "I was never a contact", "T-1")
    assert [d.id for d in await services.disputes.list() if d.iin == iin] == [dispute_id]
    await add_pcr(services, iin, "negative")
    resolved = await services.disputes.resolve(
        dispute_id,
        officer="Officer Aliya",
        upheld=True,
        note="registered by mistake",
        isolation_end=datetime.now(UTC) - timedelta(hours=1),
    )
    assert resolved.state == "upheld"
    assert (await services.statuses.status(iin)).colour is Colour.GREEN
    correction = await services.outbox.pool.fetchrow(
        "SELECT officer, reason FROM registry_corrections WHERE dispute_id = $1 "
        "AND action = 'isolation_end'",
        dispute_id,
    )
    assert dict(correction) == {"officer": "Officer Aliya", "reason": "registered by mistake"}
    told = await services.outbox.pool.fetchval(
        "SELECT kind FROM outbox WHERE dedupe_key = $1", f"dispute:{dispute_id}"
    )
    assert told == "dispute_resolved"
    with pytest.raises(Exception, match="already_resolved"):
        await services.disputes.resolve(dispute_id, officer="x", upheld=False, note="y")
