"""Laboratories push results as JSON or as FHIR R4 Bundles, correct and withdraw them; the
person is told their own result and colour in the bot, and exposure notices are sent once
and retracted when the result behind them is corrected (end to end, through the sandbox)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import text
from tests.conftest import make_settings, new_database
from tests.factories import (
    backdate_stays,
    make_iin,
    make_venue,
    signed_up,
)


@pytest.fixture(scope="module")
async def told_platform(
    server_urls: tuple[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """A platform of its own (its own database), with the citizens' status notices on."""
    async with new_database(server_urls[0], "citybots_told") as url:
        settings = make_settings(
            tmp_path_factory.mktemp("told"),
            database_url=url,
            redis_url=redis_url,
            citizen_status_notices=True,
        )
        async with Platform(settings) as running:
            yield running


@pytest.fixture
async def told_sandbox(told_platform: Platform) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(f"{told_platform.base_url}/sandbox") as client:
        yield client


def _services(platform: Platform) -> Services:
    assert platform.services is not None
    return platform.services


def observation(
    iin: str, *, status: str, outcome: str, sampled: datetime, issued: datetime
) -> dict[str, Any]:
    """One SARS-CoV-2 PCR result as a laboratory system writes it (the README's sample)."""
    snomed = {"positive": ("260373001", "Detected"), "negative": ("260415000", "Not detected")}
    code, display = snomed[outcome]
    return {
        "resourceType": "Observation",
        "status": status,
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "94500-6",
                    "display": "SARS-CoV-2 (COVID-19) RNA [Presence] in Respiratory specimen "
                    "by NAA with probe detection",
                }
            ]
        },
        "subject": {
            "identifier": {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "NNKAZ",
                        }
                    ]
                },
                "value": iin,
            }
        },
        "effectiveDateTime": sampled.isoformat(),
        "issued": issued.isoformat(),
        "valueCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]
        },
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": r} for r in resources],
    }


async def _push_fhir(platform: Platform, key: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        ClientSession() as http,
        http.post(
            f"{platform.base_url}/api/v1/pcr-results",
            json=body,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/fhir+json",
            },
        ) as response,
    ):
        assert response.status == 200, await response.text()
        report: dict[str, Any] = await response.json()
        return report


async def _told(chat: SandboxChat, expected: str, wait: float = 30.0) -> str:
    """The first message from now on that holds ``expected`` (a result told late may
    come before it)."""
    deadline = datetime.now(UTC) + timedelta(seconds=wait)
    while datetime.now(UTC) < deadline:
        for message in await chat.updates(count=1, wait=2):
            if expected in (message.get("text") or ""):
                return str(message["text"])
    raise AssertionError(f"no message with {expected!r} in {wait} s")


def _times() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(hours=20), now - timedelta(hours=2)


async def test_a_person_hears_their_result_and_its_correction_in_the_bot(
    told_sandbox: SandboxClient, told_platform: Platform
) -> None:
    services = _services(told_platform)
    chat, iin = await signed_up(told_sandbox, services)
    key = await services.labs.add(f"Told lab {make_iin()}")
    sampled, issued = _times()
    report = await _push_fhir(
        told_platform,
        key,
        bundle(
            observation(iin, status="final", outcome="negative", sampled=sampled, issued=issued)
        ),
    )
    assert (report["accepted"], report["corrected"]) == (1, 0)
    told = (await chat.reply(wait=20))["text"]
    assert told.startswith("🧪")
    assert text("en", "notices.result_negative") in told
    assert text("en", "colour.green") in told
    assert iin not in told
    corrected = observation(
        iin,
        status="corrected",
        outcome="positive",
        sampled=sampled,
        issued=issued + timedelta(hours=1),
    )
    report = await _push_fhir(told_platform, key, bundle(corrected))
    assert (report["accepted"], report["corrected"], report["duplicates"]) == (0, 1, 0)
    told = (await chat.reply(wait=20))["text"]
    assert text("en", "notices.result_positive") in told
    assert text("en", "colour.red") in told
    await chat.send("/status")
    assert (await chat.reply())["caption"].startswith(text("en", "colour.red"))
    # Sent again (a retry), the correction is told nothing new.
    again = await _push_fhir(told_platform, key, bundle(corrected))
    assert again["duplicates"] == 1
    assert await chat.updates(count=1, wait=6) == []


async def test_a_visitor_is_told_once_and_then_that_the_result_was_corrected(
    told_sandbox: SandboxClient, told_platform: Platform
) -> None:
    services = _services(told_platform)
    venue = await make_venue(services)
    codes = {c.direction: c.token for c in await services.venues.codes(venue.id)}
    sick_chat, sick = await signed_up(told_sandbox, services)
    other_chat, _ = await signed_up(told_sandbox, services)
    for chat in (sick_chat, other_chat):
        await chat.send(f"/start {codes['entry']}")
        await chat.reply()
    await backdate_stays(services, venue, by=timedelta(hours=1))
    first = await services.labs.add(f"Lab {make_iin()}")
    second = await services.labs.add(f"Lab {make_iin()}")
    sampled, issued = _times()
    positive = observation(
        sick, status="final", outcome="positive", sampled=sampled, issued=issued
    )
    await _push_fhir(told_platform, first, bundle(positive))
    await _push_fhir(told_platform, second, bundle(positive))  # the same case, a second lab
    notice = (await other_chat.reply(wait=20))["text"]
    assert notice.startswith("⚠️")
    assert venue.name in notice
    assert text("en", "notices.result_positive") in (await sick_chat.reply(wait=20))["text"]
    assert await other_chat.updates(count=1, wait=6) == []  # one notice for one stay
    for key in (first, second):
        negative = observation(
            sick, status="corrected", outcome="negative", sampled=sampled, issued=issued
        )
        negative["issued"] = (issued + timedelta(hours=1)).isoformat()
        await _push_fhir(told_platform, key, bundle(negative))
    retraction = (await other_chat.reply(wait=20))["text"]
    assert retraction.startswith("ℹ️")
    assert venue.name in retraction
    assert sick not in retraction
    assert text("en", "notices.result_negative") in await _told(
        sick_chat, text("en", "colour.green")
    )


async def test_a_bundle_gets_a_report_per_entry_and_entered_in_error_withdraws(
    told_platform: Platform,
) -> None:
    services = _services(told_platform)
    key = await services.labs.add(f"FHIR lab {make_iin()}")
    sampled, issued = _times()
    iin, patient_iin = make_iin(), make_iin()
    good = observation(iin, status="final", outcome="positive", sampled=sampled, issued=issued)
    by_reference = observation(
        patient_iin, status="final", outcome="negative", sampled=sampled, issued=issued
    )
    by_reference["subject"] = {"reference": "urn:uuid:patient-1"}
    patient = {
        "fullUrl": "urn:uuid:patient-1",
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:kz:iin", "value": patient_iin}],
        },
    }
    wrong_code = observation(
        iin, status="final", outcome="negative", sampled=sampled, issued=issued
    )
    wrong_code["code"]["coding"][0]["code"] = "94309-2"
    preliminary = observation(
        iin, status="preliminary", outcome="negative", sampled=sampled, issued=issued
    )
    no_iin = observation(iin, status="final", outcome="negative", sampled=sampled, issued=issued)
    no_iin["subject"] = {"display": "Someone"}
    broken = observation(iin, status="final", outcome="negative", sampled=sampled, issued=issued)
    broken["effectiveDateTime"] = "yesterday"
    mistyped = observation(
        "900101300016", status="final", outcome="negative", sampled=sampled, issued=issued
    )
    body = bundle(good, by_reference, wrong_code, preliminary, no_iin, broken, mistyped)
    body["entry"].insert(2, patient)
    body["entry"].append({"resource": {"resourceType": "Condition"}})
    report = await _push_fhir(told_platform, key, body)
    assert report["accepted"] == 2
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (4, "fhir.code"),
        (5, "fhir.status"),
        (6, "fhir.subject"),
        (7, "fhir.invalid"),
        (8, "iin.check_digit"),
        (9, "fhir.resource_type"),
    ]
    assert (await services.statuses.status(patient_iin)).colour.value == "green"
    withdrawal = observation(
        iin, status="entered-in-error", outcome="positive", sampled=sampled, issued=issued
    )
    report = await _push_fhir(told_platform, key, bundle(withdrawal))
    assert report["withdrawn"] == 1
    assert (await services.statuses.status(iin)).colour.value == "blue"
    async with (
        ClientSession() as http,
        http.post(
            f"{told_platform.base_url}/api/v1/pcr-results",
            data=b'{"resourceType": "Patient"}',
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+json"},
        ) as response,
    ):
        assert response.status == 400
        assert "Bundle" in (await response.json())["error"]
    for content_type in ("application/fhir+json", "application/json"):
        async with (
            ClientSession() as http,
            http.post(
                f"{told_platform.base_url}/api/v1/pcr-results",
                data=b"[" * 100_000,  # deeper than the JSON parser goes
                headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
            ) as response,
        ):
            assert response.status == 400
