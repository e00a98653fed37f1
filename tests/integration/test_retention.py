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
