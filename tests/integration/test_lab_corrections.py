"""Laboratory corrections and withdrawals, exposure notices once per stay and only for a
real overlap, the person told of their own results, disputes that mark a record as
entered in error (issue: health records a city can trust)."""

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from citybots.wiring import Services
from services.registry_rows import ImportReport
from services.status import Colour
from services.status_notices import StatusNotices
from services.venues import Venue
from tests.factories import (
    add_contact,
    add_stay,
    make_citizen,
    make_iin,
    make_venue,
    stayed_together,
    tg_user_id,
)


def _row(
    iin: str, result: str, *, sampled: datetime, result_at: datetime, lab: str = "City lab"
) -> list[str]:
    return [iin, sampled.isoformat(), result_at.isoformat(), result, lab]


async def _import(services: Services, *rows: list[str]) -> ImportReport:
    return await services.importer.import_rows(
        "pcr", [(n, row) for n, row in enumerate(rows, start=2)], source="file:test.csv"
    )


def _times() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(hours=20), now - timedelta(hours=10)


async def _stayed_together(services: Services) -> tuple[Venue, str, str, int]:
    """A venue where a person and a citizen of the bot stayed the same hour, six hours
    ago: the venue, the person's IIN, the citizen's IIN and Telegram id."""
    venue = await make_venue(services)
    sick, exposed_user = make_iin(), tg_user_id()
    exposed = await make_citizen(services, exposed_user)
    await stayed_together(services, venue, [sick, exposed], hours_ago=6)
    return venue, sick, exposed, exposed_user


async def test_a_sample_corrected_to_positive_turns_the_person_red_and_keeps_the_history(
    services: Services,
) -> None:
    iin = make_iin()
    sampled, first = _times()
    report = await _import(services, _row(iin, "negative", sampled=sampled, result_at=first))
    assert report.accepted == 1
    assert (await services.statuses.status(iin)).colour is Colour.GREEN  # cached now
    corrected_at = first + timedelta(hours=2)
    report = await _import(
        services, _row(iin, "positive", sampled=sampled, result_at=corrected_at)
    )
    assert (report.accepted, report.corrected, report.duplicates) == (0, 1, 0)
    assert report.as_dict()["corrected"] == 1
    assert (await services.statuses.status(iin)).colour is Colour.RED
    history = await services.importer.pool.fetch(
        "SELECT id, result, superseded_at, superseded_by FROM pcr_results WHERE iin = $1 "
        "ORDER BY id",
        iin,
    )
    assert [r["result"] for r in history] == ["negative", "positive"]
    assert history[0]["superseded_at"] is not None
    assert history[0]["superseded_by"] == history[1]["id"]
    assert history[1]["superseded_at"] is None
    # The laboratory's original file sent again changes nothing: it is the sample's history.
    again = await _import(services, _row(iin, "negative", sampled=sampled, result_at=first))
    assert (again.accepted, again.corrected, again.duplicates) == (0, 0, 1)
    assert (await services.statuses.status(iin)).colour is Colour.RED
    # An older result with another outcome is refused, not taken for a correction.
    older = await _import(
        services, _row(iin, "negative", sampled=sampled, result_at=first - timedelta(hours=1))
    )
    assert [(r.line, r.code) for r in older.rejected] == [(2, "result.outdated")]
    assert (await services.statuses.status(iin)).colour is Colour.RED


async def test_a_correction_in_the_same_file_is_stored_after_the_result_it_corrects(
    services: Services,
) -> None:
    iin, other = make_iin(), make_iin()
    sampled, first = _times()
    report = await _import(
        services,
        _row(iin, "negative", sampled=sampled, result_at=first),
        _row(other, "negative", sampled=sampled, result_at=first),
        _row(iin, "positive", sampled=sampled, result_at=first + timedelta(minutes=30)),
    )
    assert (report.rows, report.accepted, report.corrected, report.duplicates) == (3, 2, 1, 0)
    assert (await services.statuses.status(iin)).colour is Colour.RED
    assert (await services.statuses.status(other)).colour is Colour.GREEN


async def test_a_laboratory_withdraws_a_result_entered_in_error_and_it_stops_counting(
    services: Services,
) -> None:
    iin = make_iin()
    sampled, first = _times()
    await _import(services, _row(iin, "positive", sampled=sampled, result_at=first))
    assert (await services.statuses.status(iin)).colour is Colour.RED
    withdrawal = _row(iin, "withdrawn", sampled=sampled, result_at=first + timedelta(hours=1))
    report = await _import(services, withdrawal)
    assert (report.withdrawn, report.duplicates, report.rejected) == (1, 0, [])
    assert (await services.statuses.status(iin)).colour is Colour.BLUE
    stored = await services.importer.pool.fetchrow(
        "SELECT withdrawn_at, withdrawn_by FROM pcr_results WHERE iin = $1", iin
    )
    assert stored["withdrawn_at"] is not None
    assert stored["withdrawn_by"] == "file:test.csv"
    audited = await services.importer.pool.fetchval(
        "SELECT actor FROM audit_log WHERE action = 'pcr.withdraw' AND subject = $1", iin
    )
    assert audited == "file:test.csv"
    assert (await _import(services, withdrawal)).duplicates == 1
    nothing = _row(make_iin(), "withdrawn", sampled=sampled, result_at=first)
    refused = await _import(services, nothing)
    assert [r.code for r in refused.rejected] == ["result.nothing_to_withdraw"]


async def test_a_correction_to_positive_starts_the_exposure_search(services: Services) -> None:
    venue, sick, exposed, _exposed_user = await _stayed_together(services)
    sampled, first = _times()
    await _import(services, _row(sick, "negative", sampled=sampled, result_at=first))
    assert [n for n in await services.exposure.notices() if n.venue_id == venue.id] == []
    await _import(
        services, _row(sick, "positive", sampled=sampled, result_at=first + timedelta(hours=1))
    )
    notices = [n for n in await services.exposure.notices() if n.venue_id == venue.id]
    assert [n.exposed_iin for n in notices] == [exposed]


async def test_a_positive_corrected_to_negative_retracts_the_notices_it_caused(
    services: Services,
) -> None:
    venue = await make_venue(services)
    sick = make_iin()
    told_user, waiting_user = tg_user_id(), tg_user_id()
    told = await make_citizen(services, told_user)
    waiting = await make_citizen(services, waiting_user)
    await stayed_together(services, venue, [sick, told, waiting], hours_ago=6)
    sampled, first = _times()
    await _import(services, _row(sick, "positive", sampled=sampled, result_at=first))
    pool = services.outbox.pool
    # One notice was sent already; the other is still waiting in the outbox.
    await pool.execute(
        "UPDATE outbox SET sent_at = now() WHERE kind = 'exposure' AND chat_id = $1", told_user
    )
    await _import(
        services, _row(sick, "negative", sampled=sampled, result_at=first + timedelta(hours=1))
    )
    assert (await services.statuses.status(sick)).colour is Colour.GREEN
    notices = [n for n in await services.exposure.notices() if n.venue_id == venue.id]
    assert all(n.retracted for n in notices)
    retraction = await pool.fetchrow(
        "SELECT params FROM outbox WHERE kind = 'exposure_retracted' AND chat_id = $1", told_user
    )
    assert retraction["params"]["venue"] == venue.name
    assert sick not in str(retraction["params"])
    cancelled = await pool.fetchrow(
        "SELECT sent_at, failed_at, last_error FROM outbox WHERE kind = 'exposure' "
        "AND chat_id = $1",
        waiting_user,
    )
    assert cancelled["sent_at"] is None
    assert cancelled["failed_at"] is not None
    assert cancelled["last_error"].startswith("retracted")
    assert not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = 'exposure_retracted' AND chat_id = $1)",
        waiting_user,
    )


async def test_two_positive_results_notify_a_visitor_once_for_one_stay(
    services: Services,
) -> None:
    _venue, sick, _exposed, exposed_user = await _stayed_together(services)
    sampled, first = _times()
    await _import(services, _row(sick, "positive", sampled=sampled, result_at=first))
    await _import(
        services,
        _row(sick, "positive", sampled=sampled, result_at=first, lab="Second lab"),
    )
    ids = [
        r["id"]
        for r in await services.outbox.pool.fetch(
            "SELECT id FROM pcr_results WHERE iin = $1", sick
        )
    ]
    await services.exposure.on_positive_results(ids)  # a re-run of the search
    sent = await services.outbox.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE kind = 'exposure' AND chat_id = $1", exposed_user
    )
    assert sent == 1


@pytest.mark.parametrize(
    ("arrived", "left", "notified"),
    [
        (timedelta(hours=-1), timedelta(milliseconds=1), False),  # 1 ms together
        (timedelta(hours=-1), timedelta(minutes=14), False),
        (timedelta(hours=-1), timedelta(minutes=15), True),
        (timedelta(hours=1, minutes=10), timedelta(hours=2), True),  # 20 min after it left
        (timedelta(hours=1, minutes=16), timedelta(hours=2), False),  # 14 min after it left
        (timedelta(minutes=-30), timedelta(minutes=-10), False),  # left before the case came
    ],
)
async def test_an_overlap_counts_from_15_minutes_including_30_after_the_case_left(
    services: Services, arrived: timedelta, left: timedelta, notified: bool
) -> None:
    venue = await make_venue(services)
    sick, exposed = make_iin(), make_iin()
    case_in = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    await add_stay(services, sick, venue, case_in, case_in + timedelta(hours=1))
    await add_stay(services, exposed, venue, case_in + arrived, case_in + left)
    sampled, first = _times()
    await _import(services, _row(sick, "positive", sampled=sampled, result_at=first))
    notices = [n for n in await services.exposure.notices() if n.venue_id == venue.id]
    assert bool(notices) is notified


async def test_a_linked_person_is_told_each_result_and_colour_change_once(
    services: Services,
) -> None:
    user = tg_user_id()
    iin = await make_citizen(services, user)
    pool = services.outbox.pool

    notices = StatusNotices(pool, services.statuses, settle=timedelta(0))

    async def tell() -> list[tuple[str, dict[str, object]]]:
        before = await pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        await notices.tell_due()
        rows = await pool.fetch(
            "SELECT kind, params FROM outbox WHERE chat_id = $1 AND id > $2 ORDER BY id",
            user,
            before,
        )
        return [(r["kind"], r["params"]) for r in rows]

    assert await tell() == []  # linked: what they see already is not news
    sampled, first = _times()
    await _import(services, _row(iin, "negative", sampled=sampled, result_at=first))
    [(kind, params)] = await tell()
    assert kind == "own_result"
    assert (params["result"], params["colour"]) == ("negative", "green")
    assert params["until"] == (first + timedelta(hours=72)).isoformat()
    assert await tell() == []  # once
    # Corrected and corrected back in one file: the same answer as told, nothing to say.
    await _import(
        services,
        _row(iin, "positive", sampled=sampled, result_at=first + timedelta(minutes=1)),
        _row(iin, "negative", sampled=sampled, result_at=first + timedelta(minutes=2)),
    )
    assert await tell() == []
    await add_contact(services, iin)
    [(kind, params)] = await tell()
    assert (kind, params["colour"], params["reason"]) == (
        "status_changed",
        "yellow",
        "registered_contact",
    )
    assert iin not in str(params)


async def test_an_upheld_dispute_marks_a_contact_entered_in_error_and_lifts_the_yellow(
    services: Services,
) -> None:
    user = tg_user_id()
    iin = await make_citizen(services, user)
    await add_contact(services, iin)
    assert (await services.statuses.status(iin)).colour is Colour.YELLOW
    dispute_id = await services.disputes.open(user, iin, "yellow", "never a contact", None)
    with pytest.raises(Exception, match="error_needs_uphold"):
        await services.disputes.resolve(
            dispute_id, officer="Officer B", upheld=False, note="n", entered_in_error=True
        )
    await services.disputes.resolve(
        dispute_id,
        officer="Officer B",
        upheld=True,
        note="registered under the wrong IIN",
        entered_in_error=True,
    )
    assert (await services.statuses.status(iin)).colour is Colour.BLUE
    pool = services.outbox.pool
    correction = await pool.fetchrow(
        "SELECT officer, reason, details FROM registry_corrections WHERE dispute_id = $1 "
        "AND action = 'entered_in_error'",
        dispute_id,
    )
    assert correction["officer"] == "Officer B"
    assert correction["reason"] == "registered under the wrong IIN"
    assert correction["details"]["colour"] == "yellow"
    withdrawn = await pool.fetchval(
        "SELECT withdrawn_by FROM registered_contacts WHERE iin = $1", iin
    )
    assert withdrawn == "Officer B"


async def test_an_upheld_dispute_marks_a_positive_result_entered_in_error(
    services: Services,
) -> None:
    user = tg_user_id()
    iin = await make_citizen(services, user)
    sampled, first = _times()
    await _import(services, _row(iin, "positive", sampled=sampled, result_at=first))
    dispute_id = await services.disputes.open(user, iin, "red", "not my sample", "S-1")
    await services.disputes.resolve(
        dispute_id, officer="Officer C", upheld=True, note="sample swap", entered_in_error=True
    )
    assert (await services.statuses.status(iin)).colour is Colour.BLUE
    other = await services.disputes.open(user, iin, "blue", "still wrong", None)
    with pytest.raises(Exception, match="nothing_behind_colour"):
        await services.disputes.resolve(
            other, officer="Officer C", upheld=True, note="x", entered_in_error=True
        )


async def test_roll_ups_count_only_results_that_count(services: Services) -> None:
    iin = make_iin()
    sampled, first = _times()
    lab = f"Rollup lab {secrets.token_hex(3)}"
    await _import(services, _row(iin, "negative", sampled=sampled, result_at=first, lab=lab))
    await _import(
        services,
        _row(iin, "positive", sampled=sampled, result_at=first + timedelta(minutes=5), lab=lab),
    )
    await services.rollups.refresh()
    counted = await services.rollups.pool.fetchval(
        "SELECT coalesce(sum(value), 0) FROM rollup_hourly WHERE metric = 'pcr_tests' "
        "AND key = $1",
        lab,
    )
    assert counted == 1
