"""Laboratories push results over HTTP; the same validation and report as the CSV import."""

from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession

from citybots.platform import Platform
from services.status import Colour
from tests.factories import make_iin, refused_without_a_key


async def test_a_lab_pushes_a_batch_and_gets_the_import_report(platform: Platform) -> None:
    key = await platform.services.labs.add(f"Lab {make_iin()}")
    good, positive = make_iin(), make_iin()
    now = datetime.now(UTC)
    sampled, result = (
        (now - timedelta(hours=8)).isoformat(),
        (now - timedelta(hours=1)).isoformat(),
    )
    batch = [
        {"iin": good, "sampled_at": sampled, "result_at": result, "result": "negative"},
        {"iin": positive, "sampled_at": sampled, "result_at": result, "result": "positive"},
        {"iin": "900101300016", "sampled_at": sampled, "result_at": result, "result": "negative"},
        {"iin": good, "sampled_at": sampled},
        "not an object",
    ]
    url = f"{platform.base_url}/api/v1/pcr-results"
    async with ClientSession() as http:
        await refused_without_a_key(http, url, batch, "lab_forged")
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(url, data=b"{oops", headers=headers) as response:
            assert response.status == 400
        async with http.post(url, json=batch, headers=headers) as response:
            assert response.status == 200
            report = await response.json()
        async with http.post(url, json={"results": batch[:2]}, headers=headers) as response:
            again = await response.json()
    assert report["accepted"] == 2
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (3, "iin.check_digit"),
        (4, "row.columns"),
        (5, "row.columns"),
    ]
    assert again["accepted"] == 0
    assert again["duplicates"] == 2
    assert (await platform.services.statuses.status(positive)).colour is Colour.RED
