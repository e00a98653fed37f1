"""One ambulance call as the dispatch systems send it, checked field by field (the times
are the register importer's). Kept apart from services/ambulance.py so that the register
importer can read calls without importing the service built on it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.validation import InvalidInput, parse_coordinates

COLUMNS = (
    "call_id",
    "called_at",
    "latitude",
    "longitude",
    "address",
    "code",
    "outcome",
    "hospital",
    "placed_at",
    "system",
)
DEFAULT_CODES = "J00-J22,U07.1,U07.2"
REASONS = {
    "call.id": "call_id is empty, longer than 64 characters or not letters, digits and ._:/-",
    "call.code": "code is not a respiratory code (AMBULANCE_CODES: ICD-10 J00-J22, U07.1, "
    "U07.2 or the dispatch system's own)",
    "call.outcome": "outcome is not on_site, hospital or refused",
    "call.hospital": "a call taken to hospital needs the hospital and placed_at, and only it",
    "call.address": "address is longer than 300 characters",
    "call.system": "system is empty or longer than 200 characters",
}
OUTCOMES = {
    "on_site": "on_site",
    "treated": "on_site",
    "на месте": "on_site",
    "hospital": "hospital",
    "hospitalised": "hospital",
    "hospitalized": "hospital",
    "госпитализирован": "hospital",
    "refused": "refused",
    "отказ": "refused",
}
_CALL_ID = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_ICD = re.compile(r"([A-Z])([0-9]{2})(?:\.[0-9A-Z]{1,4})?")


class CodeSet:
    """The respiratory codes a call may carry: ICD-10 ranges (``J00-J22``: every code from
    J00 to J22.x) and exact codes (``U07.1``, or a dispatch system's own)."""

    def __init__(self, spec: str = DEFAULT_CODES) -> None:
        self.ranges: list[tuple[str, int, int]] = []
        self.exact: set[str] = set()
        for item in (part.strip().upper() for part in spec.split(",")):
            if not item:
                continue
            low, dash, high = item.partition("-")
            first, last = _ICD.fullmatch(low), _ICD.fullmatch(high)
            if dash and first and last and first[1] == last[1] and "." not in item:
                self.ranges.append((first[1], int(first[2]), int(last[2])))
            elif len(item) <= 20:  # a code of the dispatch system's own, dashes and all
                self.exact.add(item)
            else:
                raise ValueError(f"{item!r} is longer than 20 characters")
        if not self.ranges and not self.exact:
            raise ValueError("no codes given")

    def __contains__(self, code: str) -> bool:
        code = code.strip().upper()
        if code in self.exact:
            return True
        match = _ICD.fullmatch(code)
        if match is None:
            return False
        return any(
            letter == match[1] and low <= int(match[2]) <= high
            for letter, low, high in self.ranges
        )


@dataclass(frozen=True)
class CallFields:
    call_id: str
    latitude: float
    longitude: float
    address: str | None
    code: str
    outcome: str
    hospital: str | None
    system: str


def check_call(
    call_id: str,
    latitude: str,
    longitude: str,
    address: str,
    code: str,
    outcome: str,
    hospital: str,
    system: str,
    *,
    codes: CodeSet,
    placed: bool,
) -> CallFields:
    """The call's fields but its times, or InvalidInput with the reason's code."""
    if not _CALL_ID.fullmatch(call_id):
        raise InvalidInput("call.id")
    try:
        lat, lon = float(latitude), float(longitude)
    except ValueError:
        raise InvalidInput("location.format") from None
    point = parse_coordinates(lat, lon)
    if len(address) > 300:
        raise InvalidInput("call.address")
    if code.upper() not in codes:
        raise InvalidInput("call.code")
    kind = OUTCOMES.get(outcome.lower())
    if kind is None:
        raise InvalidInput("call.outcome")
    if (kind == "hospital") != bool(hospital and placed) or (hospital and kind != "hospital"):
        raise InvalidInput("call.hospital")
    if len(hospital) > 200:
        raise InvalidInput("call.hospital")
    if not 1 <= len(system) <= 200:
        raise InvalidInput("call.system")
    return CallFields(
        call_id,
        point.latitude,
        point.longitude,
        address or None,
        code.upper(),
        kind,
        hospital or None,
        system,
    )
