"""Ambulance 103 calls: the CSV import (the registers' validation, report and duplicate
rules), clusters found incrementally with an alert, the hospitals' figures, the map layer
and retention, on real PostgreSQL."""

import random
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from citybots.wiring import Services
from services.ambulance import AmbulanceService
from services.registry_rows import CsvSource

HEADER = "call_id,called_at,latitude,longitude,address,code,outcome,hospital,placed_at,system\n"
TZ = ZoneInfo("Asia/Almaty")


def _place() -> tuple[float, float]:
    """A spot of its own for each test: clusters are city-wide."""
    return 43.1 + random.random() * 0.2, 76.8 + random.random() * 0.3


def _csv(tmp_path: Path, lines: list[str]) -> CsvSource:
    path = tmp_path / f"calls-{secrets.token_hex(3)}.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return CsvSource(path)


def _call(
    lat: float,
    lon: float,
    at: datetime,
    *,
    outcome: str = "on_site",
    code: str = "J06.9",
    hospital: str = "",
    placed: str = "",
) -> str:
    call_id = "C-" + secrets.token_hex(5)
    return (
        f"{call_id},{at.isoformat()},{lat:.6f},{lon:.6f},,{code},{outcome},{hospital},{placed},103"
    )


async def test_a_calls_file_is_checked_row_by_row_and_importing_it_again_adds_nothing(
    services: Services, tmp_path: Path
) -> None:
    lat, lon = _place()
    now = datetime.now(UTC).replace(microsecond=0)
    earlier = (now - timedelta(hours=3)).isoformat()
    placed = (now - timedelta(hours=2)).isoformat()
    too_early = (now - timedelta(hours=5)).isoformat()
    lines = [
        _call(lat, lon, now - timedelta(hours=3)),
        f"K-1{secrets.token_hex(3)},{earlier},{lat},{lon},Abay 1,U07.1,hospital,C1,{placed},103",
        f"bad id!,{earlier},{lat},{lon},,J06,on_site,,,103",
        f"K-2,{earlier},{lat},{lon},,I21.0,on_site,,,103",  # a heart attack: not respiratory
        f"K-3,{earlier},{lat},{lon},,J18,walked away,,,103",
        f"K-4,{earlier},{lat},{lon},,J18,hospital,,,103",  # no hospital, no time
        f"K-5,{earlier},{lat},{lon},,J18,on_site,City Hospital 1,,103",
        f"K-6,{earlier},{lat},{lon},,J18,hospital,City 1,{too_early},103",
        f"K-7,{(now + timedelta(days=1)).isoformat()},{lat},{lon},,J18,on_site,,,103",
        f"K-8,{earlier},{lon * 10},{lat},,J18,on_site,,,103",
        f"K-9,{earlier},{lat},{lon},,J18,on_site,,,",
        "K-10,too,few",
    ]
    report = await services.ambulance.import_calls(
        _csv(tmp_path, lines).rows(), source="test", actor="test"
    )
    assert report.accepted == 2
    assert [(r.line, r.code) for r in report.rejected] == [
        (4, "call.id"),
        (5, "call.code"),
        (6, "call.outcome"),
        (7, "call.hospital"),
        (8, "call.hospital"),
        (9, "time.order"),
        (10, "time.future"),
        (11, "location.range"),
        (12, "call.system"),
        (13, "row.columns"),
    ]
    again = await services.ambulance.import_calls(
        _csv(tmp_path, lines[:2]).rows(), source="test", actor="test"
    )
    assert (again.accepted, again.duplicates) == (0, 2)


async def test_five_calls_from_one_block_make_one_new_cluster_with_an_alert_for_the_chat(
    services: Services, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    chat = random.randint(10**9, 2 * 10**9)
    ambulance = AmbulanceService(pool, services.importer, alert_chat_id=chat)
    lat, lon = _place()
    start = datetime.now(UTC) - timedelta(days=2)
    four = [_call(lat + i * 0.0002, lon, start + timedelta(hours=10 * i)) for i in range(4)]
    await ambulance.import_calls(_csv(tmp_path, four).rows(), source="test", actor="test")
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE chat_id = $1", chat) == 0

    fifth = [_call(lat, lon + 0.0003, start + timedelta(hours=45))]
    await ambulance.import_calls(_csv(tmp_path, fifth).rows(), source="test", actor="test")
    cluster = await pool.fetchrow(
        "SELECT c.id, c.calls FROM ambulance_clusters c JOIN ambulance_calls a "
        "ON a.cluster_id = c.id WHERE a.latitude = $1 AND a.longitude = $2",
        round(lat, 6),
        round(lon + 0.0003, 6),
    )
    assert cluster is not None
    assert cluster["calls"] == 5
    alert = await pool.fetchrow("SELECT kind, params FROM outbox WHERE chat_id = $1", chat)
    assert alert["kind"] == "ambulance_cluster"
    assert alert["params"]["calls"] == 5

    sixth = [_call(lat + 0.0001, lon, start + timedelta(hours=46))]
    await ambulance.import_calls(_csv(tmp_path, sixth).rows(), source="test", actor="test")
    assert (
        await pool.fetchval("SELECT calls FROM ambulance_clusters WHERE id = $1", cluster["id"])
        == 6
    )
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE chat_id = $1", chat) == 1
    listed = {c.id: c for c in await ambulance.clusters(TZ)}
    assert sum(n for _, n in listed[cluster["id"]].per_day) == 6
    assert await ambulance.acknowledge(cluster["id"], "epi")
    assert not await ambulance.acknowledge(cluster["id"], "epi")


async def test_hospitals_get_calls_per_day_and_the_median_and_p90_time_to_placement(
    services: Services, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    hospital = f"Hospital {secrets.token_hex(3)}"
    # yesterday at 01:00, so that every placement (up to 03:00) is in the past at any hour
    called = (datetime.now(TZ) - timedelta(days=1)).replace(
        hour=1, minute=0, second=0, microsecond=0
    )
    lines = []
    for minutes in (30, 40, 50, 60, 120):
        lat, lon = _place()
        placed = (called + timedelta(minutes=minutes)).isoformat()
        lines.append(_call(lat, lon, called, outcome="hospital", hospital=hospital, placed=placed))
    report = await services.ambulance.import_calls(
        _csv(tmp_path, lines).rows(), source="test", actor="test"
    )
    assert report.accepted == 5
    day = called.date()
    days = await services.ambulance.hospital_days(day, day, TZ)
    assert [(d.hospital, d.calls) for d in days if d.hospital == hospital] == [(hospital, 5)]
    row = await pool.fetchrow(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM placed_at - "
        "called_at) / 60) AS median FROM ambulance_calls WHERE hospital = $1",
        hospital,
    )
    assert row["median"] == 50
    placement = await services.ambulance.placement(day, day, TZ)
    assert placement.calls >= 5
    assert placement.median_minutes is not None


async def test_the_map_layer_holds_the_days_calls_their_heat_and_clusters_and_old_calls_go(
    services: Services, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    lat, lon = _place()
    old = datetime.now(UTC) - timedelta(days=400)
    recent = datetime.now(UTC) - timedelta(hours=1)
    lines = [_call(lat, lon, old), _call(lat, lon, recent)]
    await services.ambulance.import_calls(
        _csv(tmp_path, lines).rows(), source="test", actor="test"
    )
    today = datetime.now(TZ).date()
    layer = await services.ambulance.layer(today - timedelta(days=1), today, TZ)
    points = [f["geometry"]["coordinates"] for f in layer["calls"]["features"]]
    assert [round(lon, 6), round(lat, 6)] in points
    assert layer["heat"]["features"]
    removed = await services.ambulance.purge(timedelta(days=365))
    assert removed >= 1
    assert not await pool.fetchval(
        "SELECT count(*) FROM ambulance_calls WHERE called_at < now() - interval '365 days'"
    )
