"""Ambulance dispatch systems push calls over HTTP: the same validation and report as the
CSV import, a key per system, and calls of one block clustered at once."""

import random
import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession

from citybots.platform import Platform


async def test_a_dispatch_system_pushes_calls_and_gets_the_report_and_a_cluster(
    platform: Platform,
) -> None:
    assert platform.services is not None
    key = await platform.services.ambulance.add_system(f"103 {secrets.token_hex(3)}")
    lat, lon = 43.1 + random.random() * 0.2, 76.8 + random.random() * 0.3
    start = datetime.now(UTC) - timedelta(days=1)
    calls = [
        {
            "call_id": f"A{secrets.token_hex(4)}",
            "called_at": (start + timedelta(hours=i)).isoformat(),
            "latitude": lat + i * 0.0001,
            "longitude": lon,
            "code": "J18.9",
            "outcome": "on_site",
        }
        for i in range(5)
    ]
    calls[0].update(
        outcome="hospital", hospital="City Hospital 7", placed_at=datetime.now(UTC).isoformat()
    )
    bad = [
        {**calls[1], "call_id": "B1", "code": "S06"},
        {**calls[1], "call_id": "B2", "latitude": "north"},
        {"call_id": "B3"},
        ["not", "an", "object"],
    ]
    url = f"{platform.base_url}/api/v1/ambulance-calls"
    async with ClientSession() as http:
        async with http.post(url, json=calls) as response:
            assert response.status == 401
        headers = {"Authorization": "Bearer amb_forged"}
        async with http.post(url, json=calls, headers=headers) as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(url, data=b"[oops", headers=headers) as response:
            assert response.status == 400
            assert "JSON" in (await response.json())["error"]
        async with http.post(url, json={"calls": calls + bad}, headers=headers) as response:
            assert response.status == 200
            report = await response.json()
        async with http.post(url, json=calls[:2], headers=headers) as response:
            again = await response.json()
        lab_headers = {"Authorization": f"Bearer {key}"}
        async with http.post(
            f"{platform.base_url}/api/v1/pcr-results", json=[], headers=lab_headers
        ) as response:
            assert response.status == 401  # a dispatch system's key is no laboratory's
    assert report["accepted"] == 5
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (6, "call.code"),
        (7, "location.format"),
        (8, "row.columns"),
        (9, "row.columns"),
    ]
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    clustered = await platform.pool.fetch(
        "SELECT cluster_id FROM ambulance_calls WHERE call_id = ANY($1::text[])",
        [c["call_id"] for c in calls],
    )
    assert len({r["cluster_id"] for r in clustered}) == 1
    assert clustered[0]["cluster_id"] is not None
