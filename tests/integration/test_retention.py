import secrets
from datetime import timedelta

from citybots.wiring import Services
from services.retention import Retention, purge
from tests.factories import make_iin, make_venue


async def test_old_visits_are_purged_and_recent_ones_kept(services: Services) -> None:
    venue = await make_venue(services)
    old, recent, still_inside = make_iin(), make_iin(), make_iin()
    for iin in (old, recent, still_inside):
        await services.visits.check_in(iin, venue, entrance_id=None, via="qr")
    await services.visits.check_out(old, venue.id)
    await services.visits.check_out(recent, venue.id)
    pool = services.visits.pool
    await pool.execute(
        "UPDATE visits SET checked_in_at = checked_in_at - interval '40 days', "
        "checked_out_at = checked_out_at - interval '40 days' WHERE iin = $1",
        old,
    )
    await pool.execute(
        "UPDATE visits SET checked_in_at = checked_in_at - interval '40 days' WHERE iin = $1",
        still_inside,
    )
    removed = await purge(pool, Retention(visits=timedelta(days=28)))
    assert removed["visits"] >= 1
    left = {
        r["iin"]
        for r in await pool.fetch(
            "SELECT iin FROM visits WHERE iin = ANY($1)", [old, recent, still_inside]
        )
    }
    assert left == {recent, still_inside}  # an open stay is closed by auto-checkout first


async def test_closed_tickets_and_unanswered_questions_expire_and_a_second_run_removes_nothing(
    services: Services,
) -> None:
    pool = services.visits.pool
    chat = 7_000_000_000 + secrets.randbelow(10**9)
    old_ticket = await pool.fetchval(
        "INSERT INTO hotline_tickets (citizen_chat, language, question, state, closed_at)"
        " VALUES ($1, 'ru', 'old question', 'closed', now() - interval '100 days') RETURNING id",
        chat,
    )
    forgotten = await pool.fetchval(
        "INSERT INTO hotline_tickets (citizen_chat, language, question, created_at)"
        " VALUES ($1, 'ru', 'never taken', now() - interval '100 days') RETURNING id",
        chat + 1,
    )
    open_ticket = await pool.fetchval(
        "INSERT INTO hotline_tickets (citizen_chat, language, question)"
        " VALUES ($1, 'ru', 'still waiting') RETURNING id",
        chat,
    )
    old_question = await pool.fetchval(
        "INSERT INTO hotline_unanswered (text, language, asked_at)"
        " VALUES ('old', 'en', now() - interval '100 days') RETURNING id"
    )
    new_question = await pool.fetchval(
        "INSERT INTO hotline_unanswered (text, language) VALUES ('new', 'en') RETURNING id"
    )
    removed = await purge(pool, Retention(hotline=timedelta(days=90)))
    assert removed["hotline_tickets"] >= 1
    assert removed["hotline_unanswered"] >= 1
    tickets = {r["id"] for r in await pool.fetch("SELECT id FROM hotline_tickets")}
    assert old_ticket not in tickets
    assert forgotten not in tickets  # left open past the period: the question goes too
    assert open_ticket in tickets
    questions = {r["id"] for r in await pool.fetch("SELECT id FROM hotline_unanswered")}
    assert old_question not in questions
    assert new_question in questions
    again = await purge(pool, Retention(hotline=timedelta(days=90)))
    assert again["hotline_tickets"] == 0
    assert again["hotline_unanswered"] == 0


async def test_queued_status_notices_left_by_a_job_that_is_off_are_purged_after_a_day(
    services: Services,
) -> None:
    pool = services.visits.pool
    old = await pool.fetchval(
        "INSERT INTO status_notice_queue (iins, created_at)"
        " VALUES (ARRAY['791028302728'], now() - interval '2 days') RETURNING id"
    )
    new = await pool.fetchval(
        "INSERT INTO status_notice_queue (iins) VALUES (ARRAY['791028302728']) RETURNING id"
    )
    removed = await purge(pool, Retention())
    assert removed["status_notice_queue"] >= 1
    left = {r["id"] for r in await pool.fetch("SELECT id FROM status_notice_queue")}
    assert old not in left
    assert new in left
