"""Every alert kind and every way an episode ends has its text in every language, with
the same placeholders: a missing text fails here, not in a doctor's chat."""

from __future__ import annotations

from string import Formatter

import pytest

from flows.i18n import catalogues
from flows.quarantine.alerts import (
    ALERT_TEXTS,
    CLOSED_TEXTS,
    ENDED_TEXTS,
    KIND_NAMES,
    PATIENT_TEXTS,
)
from services.languages import LANGUAGES
from services.quarantine import AlertKind, CloseKind

KEYS: list[tuple[str, AlertKind | CloseKind, str]] = [
    (name, kind, key)
    for name, mapping in (
        ("alert", ALERT_TEXTS),
        ("kind name", KIND_NAMES),
        ("patient notice", PATIENT_TEXTS),
        ("closed", CLOSED_TEXTS),
        ("ended", ENDED_TEXTS),
    )
    for kind, key in mapping.items()
]


def placeholders(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in Formatter().parse(template) if name is not None)


@pytest.mark.parametrize("kind", list(AlertKind))
def test_every_alert_kind_has_an_alert_a_name_and_a_patient_notice(kind: AlertKind) -> None:
    assert kind in ALERT_TEXTS
    assert kind in KIND_NAMES
    assert kind in PATIENT_TEXTS


@pytest.mark.parametrize("kind", list(CloseKind))
def test_every_way_an_episode_ends_has_a_line_on_the_alert(kind: CloseKind) -> None:
    assert kind in ENDED_TEXTS


def test_the_episodes_that_end_by_themselves_are_told_to_doctor_and_patient() -> None:
    by_themselves = {CloseKind.BACK_HOME, CloseKind.SIGNAL_BACK}
    assert set(CLOSED_TEXTS) == by_themselves
    assert by_themselves | {CloseKind.CASE_CLOSED} <= set(PATIENT_TEXTS)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    ("what", "kind", "key"), KEYS, ids=[f"{what}:{kind.value}" for what, kind, _ in KEYS]
)
def test_each_kinds_text_is_in_every_language_with_the_same_placeholders(
    what: str, kind: AlertKind | CloseKind, key: str, lang: str
) -> None:
    books = catalogues()
    assert key in books[lang], f"no {lang} text {key!r} for the {what} of {kind.value}"
    mine = placeholders(books[lang][key])
    for other in LANGUAGES:
        if key in books[other]:
            theirs = placeholders(books[other][key])
            assert mine == theirs, f"{key}: {lang} takes {sorted(mine)}, {other} {sorted(theirs)}"
