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
from tests.factories import Door, inside_together, make_iin, signed_up


@pytest.fixture(scope="module")
async def platform(
    server_urls: tuple[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """This module's platform, its own (its own database), with the citizens' status
    notices on; the ``sandbox`` and ``services`` fixtures are this platform's here."""
    async with new_database(server_urls[0], "citybots_told") as url:
        settings = make_settings(
            tmp_path_factory.mktemp("told"),
            database_url=url,
            redis_url=redis_url,
            citizen_status_notices=True,
        )
        async with Platform(settings) as running:
            yield running


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
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    chat, iin = await signed_up(sandbox, services)
    key = await services.labs.add(f"Told lab {make_iin()}")
    sampled, issued = _times()
    report = await _push_fhir(
        platform,
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
    report = await _push_fhir(platform, key, bundle(corrected))
    assert (report["accepted"], report["corrected"], report["duplicates"]) == (0, 1, 0)
    told = (await chat.reply(wait=20))["text"]
    assert text("en", "notices.result_positive") in told
    assert text("en", "colour.red") in told
    await chat.send("/status")
    assert (await chat.reply())["caption"].startswith(text("en", "colour.red"))
    # Sent again (a retry), the correction is told nothing new.
    again = await _push_fhir(platform, key, bundle(corrected))
    assert again["duplicates"] == 1
    assert await chat.updates(count=1, wait=6) == []


async def test_a_visitor_is_told_once_and_then_that_the_result_was_corrected(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door
) -> None:
    sick_chat, sick, other_chat = await inside_together(sandbox, services, door)
    first = await services.labs.add(f"Lab {make_iin()}")
    second = await services.labs.add(f"Lab {make_iin()}")
    sampled, issued = _times()
    positive = observation(
        sick, status="final", outcome="positive", sampled=sampled, issued=issued
    )
    await _push_fhir(platform, first, bundle(positive))
    await _push_fhir(platform, second, bundle(positive))  # the same case, a second lab
    notice = (await other_chat.reply(wait=20))["text"]
    assert notice.startswith("⚠️")
    assert door.venue.name in notice
    assert text("en", "notices.result_positive") in (await sick_chat.reply(wait=20))["text"]
    assert await other_chat.updates(count=1, wait=6) == []  # one notice for one stay
    for key in (first, second):
        negative = observation(
            sick, status="corrected", outcome="negative", sampled=sampled, issued=issued
        )
        negative["issued"] = (issued + timedelta(hours=1)).isoformat()
        await _push_fhir(platform, key, bundle(negative))
    retraction = (await other_chat.reply(wait=20))["text"]
    assert retraction.startswith("ℹ️")
    assert door.venue.name in retraction
    assert sick not in retraction
    assert text("en", "notices.result_negative") in await _told(
        sick_chat, text("en", "colour.green")
    )


async def test_a_bundle_gets_a_report_per_entry_and_entered_in_error_withdraws(
    platform: Platform, services: Services
) -> None:
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
    report = await _push_fhir(platform, key, body)
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
    report = await _push_fhir(platform, key, bundle(withdrawal))
    assert report["withdrawn"] == 1
    assert (await services.statuses.status(iin)).colour.value == "blue"
    async with (
        ClientSession() as http,
        http.post(
            f"{platform.base_url}/api/v1/pcr-results",
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
                f"{platform.base_url}/api/v1/pcr-results",
                data=b"[" * 100_000,  # deeper than the JSON parser goes
                headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
            ) as response,
        ):
            assert response.status == 400
