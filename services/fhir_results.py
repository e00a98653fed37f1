"""Laboratory results as HL7 FHIR R4: a ``Bundle`` of ``Observation`` resources.

Each Observation is validated with the ``fhir.resources`` models (R4B, whose Observation,
Bundle and Patient are R4's) and must be a SARS-CoV-2 RNA PCR (LOINC 94500-6) with:

- the patient's IIN as an identifier: on ``subject.identifier``, or on the ``Patient`` the
  subject references inside the Bundle; the identifier of type ``NNKAZ`` (HL7 v2 table
  0203: national person identifier, Kazakhstan), else the one whose ``system`` names an
  IIN;
- ``effectiveDateTime`` the sample time, ``issued`` the result time;
- the outcome in ``valueCodeableConcept`` (SNOMED CT 10828004 positive, 260373001
  detected, 260385009 negative, 260415000 not detected; or the display text) or in
  ``interpretation`` (POS, DET, NEG, ND);
- ``status`` final, amended or corrected (a result; a changed outcome for a stored sample
  is a correction by the importer's rule), or entered-in-error (the sample's result is
  withdrawn).

The Observations become the importer's rows, numbered by their entry's position in the
Bundle (1-based), so the report has the shape of every other push.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from services.errors import Refusal
from services.registry_rows import WITHDRAWN, Rejected

LOINC = "http://loinc.org"
SARS_COV_2_PCR = "94500-6"
IIN_IDENTIFIER_TYPE = "NNKAZ"
_POSITIVE = {"10828004", "260373001", "POS", "DET", "positive", "detected"}
_NEGATIVE = {"260385009", "260415000", "NEG", "ND", "negative", "not detected"}
_RESULT_STATUSES = {"final", "amended", "corrected"}
_WITHDRAWN_STATUS = "entered-in-error"

Row = tuple[int, list[str]]


class FhirError(ValueError):
    """The body is not a FHIR Bundle (or Observation) at all: the whole push is refused."""


def bundle_rows(body: Any, laboratory: str) -> tuple[list[Row], list[Rejected]]:
    """The importer's PCR rows from a Bundle (or a single Observation), and the entries
    refused here with their position and reason."""
    if not isinstance(body, dict):
        raise FhirError("the body must be a FHIR Bundle of Observations")
    if body.get("resourceType") == "Observation":
        entries: list[Any] = [{"resource": body}]
    elif body.get("resourceType") == "Bundle":
        entries = body.get("entry") or []
        if not isinstance(entries, list):
            raise FhirError("Bundle.entry must be a list")
    else:
        raise FhirError('resourceType must be "Bundle" (or "Observation")')
    patients = _patients(entries)
    rows: list[Row] = []
    rejected: list[Rejected] = []
    for position, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind == "Patient":
            continue
        if kind != "Observation" or not isinstance(resource, dict):
            rejected.append(Rejected(position, "fhir.resource_type", []))
            continue
        try:
            rows.append((position, _row(resource, patients, laboratory)))
        except _Refused as refusal:
            rejected.append(Rejected(position, refusal.code, []))
    return rows, rejected


class _Refused(Refusal):
    """An entry refused; ``code`` names why."""


def _row(resource: dict[str, Any], patients: dict[str, str], laboratory: str) -> list[str]:
    try:
        observation = Observation.model_validate(resource)
    except ValidationError:
        raise _Refused("fhir.invalid") from None
    codings = observation.code.coding or []
    if not any(c.system == LOINC and c.code == SARS_COV_2_PCR for c in codings):
        raise _Refused("fhir.code")
    iin = _subject_iin(observation, patients)
    sampled = observation.effectiveDateTime
    if sampled is None:
        raise _Refused("fhir.effective")
    if observation.status == _WITHDRAWN_STATUS:
        verdict = WITHDRAWN
        issued = observation.issued or sampled
    elif observation.status in _RESULT_STATUSES:
        verdict = _outcome(observation)
        if observation.issued is None:
            raise _Refused("fhir.issued")
        issued = observation.issued
    else:
        raise _Refused("fhir.status")
    return [iin, _iso(sampled), _iso(issued), verdict, laboratory]


def _iso(moment: datetime | date) -> str:
    return moment.isoformat()


def _outcome(observation: Observation) -> str:
    words: list[str] = []
    concept = observation.valueCodeableConcept
    if concept is not None:
        words += [c.code or "" for c in concept.coding or []]
        words += [(c.display or "").lower() for c in concept.coding or []]
        words.append((concept.text or "").lower())
    for interpretation in observation.interpretation or []:
        words += [c.code or "" for c in interpretation.coding or []]
    if observation.valueString:
        words.append(observation.valueString.lower())
    positive = any(w in _POSITIVE for w in words)
    negative = any(w in _NEGATIVE for w in words)
    if positive == negative:  # neither, or both: no outcome to store
        raise _Refused("fhir.value")
    return "positive" if positive else "negative"


def _iin_of(identifiers: list[Any] | None) -> str | None:
    for identifier in identifiers or []:
        codings = identifier.type.coding if identifier.type is not None else None
        if any(c.code == IIN_IDENTIFIER_TYPE for c in codings or []):
            return str(identifier.value or "")
    for identifier in identifiers or []:
        if "iin" in (identifier.system or "").lower():
            return str(identifier.value or "")
    return None


def _subject_iin(observation: Observation, patients: dict[str, str]) -> str:
    subject = observation.subject
    if subject is None:
        raise _Refused("fhir.subject")
    iin = _iin_of([subject.identifier] if subject.identifier is not None else None)
    if iin is None and subject.reference:
        iin = patients.get(subject.reference)
    if iin is None:
        raise _Refused("fhir.subject")
    return iin


def _patients(entries: list[Any]) -> dict[str, str]:
    """IINs of the Bundle's Patients, by every name a subject may reference them by."""
    found: dict[str, str] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
            continue
        try:
            patient = Patient.model_validate(resource)
        except ValidationError:
            continue
        iin = _iin_of(patient.identifier)
        if iin is None:
            continue
        if isinstance(entry.get("fullUrl"), str):
            found[entry["fullUrl"]] = iin
        if patient.id:
            found[f"Patient/{patient.id}"] = iin
    return found
