"""The structured city in a scenario file: the ``structured:`` block (population,
districts, contacts by setting) and each scenario's ``interventions:``, checked and
turned into what the engine needs (services.model.structured.Policy).

Every mistake is reported with where it is, like the rest of the scenario file.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.model.population import FIVE_YEAR_BANDS, SETTINGS, District, PopulationConfig
from services.model.structured import Policy

KINDS = (
    "schools_closed",
    "work_from_home",
    "masks",
    "contacts",
    "quarantine_zone",
    "testing",
    "household_quarantine",
)


MATRIX_SETTINGS = ("home", "school", "work", "others")  # as Prem et al. name them
MODULE_DIR = Path(__file__).resolve().parent


class CityError(ValueError):
    """A structured block or intervention that cannot be used (where and why)."""


@dataclass(frozen=True)
class ContactMatrices:
    """Published contact matrices (Prem et al. 2021): per setting, 16 rows (the person's
    five-year band) of 16 columns (their contacts' band), mean contacts a day."""

    path: Path
    area: str
    matrices: dict[str, npt.NDArray[np.float64]]

    def per_band(self, setting: str) -> tuple[float, ...]:
        """Contacts a day of a person of each band in ``setting`` (the row sums)."""
        return tuple(float(v) for v in self.matrices[setting].sum(axis=1))


def load_matrices(
    path: Path, area: str, where: str = "structured.contacts.matrices"
) -> ContactMatrices:
    """The matrices of one ``area`` from a CSV of rows ``area,setting,age,<16 bands>``
    (lines starting with # are comments; services/model/data/prem2021_kaz.csv)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            lines = [line for line in f if line.strip() and not line.startswith("#")]
    except OSError as error:
        raise CityError(f"{where}.file: cannot read {path} ({error.strerror})") from error
    reader = csv.reader(lines)
    header = next(reader, [])
    if len(header) != 3 + FIVE_YEAR_BANDS or header[:3] != ["area", "setting", "age"]:
        raise CityError(
            f"{where}.file: {path.name} needs the columns area, setting, age and 16 bands"
        )
    rows: dict[str, list[list[float]]] = {s: [] for s in MATRIX_SETTINGS}
    for n, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise CityError(f"{where}.file: {path.name} row {n} has {len(row)} values")
        if row[0] != area or row[1] not in rows:
            continue
        try:
            values = [float(v) for v in row[3:]]
        except ValueError as error:
            raise CityError(f"{where}.file: {path.name} row {n}: {error}") from error
        if any(not np.isfinite(v) or v < 0 for v in values):
            raise CityError(f"{where}.file: {path.name} row {n}: values must be 0 or more")
        rows[row[1]].append(values)
    matrices = {}
    for setting, table in rows.items():
        if len(table) != FIVE_YEAR_BANDS:
            raise CityError(
                f"{where}: {path.name} has {len(table)} rows for area {area!r}, setting "
                f"{setting!r} ({FIVE_YEAR_BANDS} are needed)"
            )
        matrices[setting] = np.asarray(table, dtype=np.float64)
    return ContactMatrices(path=path, area=area, matrices=matrices)


@dataclass(frozen=True)
class Structure:
    """The ``structured:`` block: how to build the city and weigh its contacts."""

    population: PopulationConfig
    setting_weight: tuple[float, float, float, float]
    r0: float  # of the schedule's first phase; sets the probability per contact
    steps_per_day: int = 1
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Intervention:
    kind: str
    start: date
    until: date | None
    share: float = 0.0
    delay_days: float = 0.0
    factors: dict[str, float] = field(default_factory=dict)
    district: int = -1
    why: str = ""


Number = Callable[..., float]


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CityError(f"{where}: must be a mapping of names to values")
    return value


def _numbers(value: object, where: str, count: int, number: Number) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != count:
        raise CityError(f"{where}: must be a list of {count} numbers")
    return tuple(number(v, f"{where}[{i}]", low=0) for i, v in enumerate(value))


def _entries(raw: object, where: str, what: str) -> list[tuple[str, dict[str, Any]]]:
    """A non-empty list of mappings, each with where it is."""
    if not isinstance(raw, list) or not raw:
        raise CityError(f"{where}: {what}")
    return [(f"{where}[{n}]", _mapping(item, f"{where}[{n}]")) for n, item in enumerate(raw)]


def parse_structure(raw: object, number: Number, pyramid: tuple[int, ...]) -> Structure:
    top = _mapping(raw, "structured")
    districts = []
    for at, d in _entries(
        top.get("districts"), "structured.districts", "a list of at least one district is needed"
    ):
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise CityError(f"{at}.name: every district needs a name")
        districts.append(
            District(
                name=name.strip(),
                population=int(
                    number(d.get("population"), f"{at}.population", low=1, integer=True)
                ),
                jobs=number(d.get("jobs", 1.0), f"{at}.jobs", low=0),
            )
        )
    names = [d.name for d in districts]
    if len(set(names)) != len(names):
        raise CityError("structured.districts: names must be unique")
    households = top.get("household_sizes")
    if not isinstance(households, list) or not households:
        raise CityError("structured.household_sizes: a list of shares of 1, 2, ... people")
    sizes = tuple(
        number(v, f"structured.household_sizes[{i}]", low=0) for i, v in enumerate(households)
    )
    if sum(sizes) <= 0:
        raise CityError("structured.household_sizes: the shares cannot all be 0")
    contacts = _mapping(top.get("contacts"), "structured.contacts")
    matrices = _matrices(contacts.get("matrices"))
    # With published matrices: school, work and community contacts a day per band are
    # the rows' sums of school, work and "others", and the community mixing matrix is
    # "others" itself; a list given beside them replaces that setting's sums.
    from_matrices = {"school": "school", "work": "work", "community": "others"}
    per_band = {
        name: (
            matrices.per_band(from_matrices[name])
            if matrices is not None and contacts.get(name) is None
            else _numbers(
                contacts.get(name), f"structured.contacts.{name}", FIVE_YEAR_BANDS, number
            )
        )
        for name in ("school", "work", "community")
    }
    mixing_raw = contacts.get("community_mixing")
    mixing: tuple[tuple[float, ...], ...] = ()
    if matrices is not None and mixing_raw is None:
        mixing = tuple(tuple(float(v) for v in row) for row in matrices.matrices["others"])
    elif isinstance(mixing_raw, dict):
        at = "structured.contacts.community_mixing"
        rows = approximate_mixing(
            pyramid,
            number(mixing_raw.get("assortative", 0.6), f"{at}.assortative", low=0, high=1),
            number(mixing_raw.get("width_bands", 1.5), f"{at}.width_bands", low=0.1, high=16),
        )
        mixing = tuple(tuple(float(v) for v in row) for row in rows)
    elif mixing_raw is not None:
        if not isinstance(mixing_raw, list) or len(mixing_raw) != FIVE_YEAR_BANDS:
            raise CityError(
                f"structured.contacts.community_mixing: {FIVE_YEAR_BANDS} rows are needed"
            )
        mixing = tuple(
            _numbers(row, f"structured.contacts.community_mixing[{i}]", FIVE_YEAR_BANDS, number)
            for i, row in enumerate(mixing_raw)
        )
    weights_raw = _mapping(top.get("setting_weight", {}), "structured.setting_weight")
    default_weight = {"home": 3.0, "school": 0.6, "work": 0.6, "community": 0.3}
    weights = tuple(
        number(weights_raw.get(s, default_weight[s]), f"structured.setting_weight.{s}", low=0)
        for s in SETTINGS
    )
    school = _ages(top.get("school_ages", [6, 18]), "structured.school_ages", number)
    work = _ages(top.get("work_ages", [20, 65]), "structured.work_ages", number)
    workplaces = []
    for at, w in _entries(
        top.get("workplace_sizes"),
        "structured.workplace_sizes",
        "a list of {smallest, largest, share}",
    ):
        low = int(number(w.get("smallest"), f"{at}.smallest", low=1, integer=True))
        high = int(number(w.get("largest"), f"{at}.largest", low=low, integer=True))
        workplaces.append((low, high, number(w.get("share"), f"{at}.share", low=0)))
    config = PopulationConfig(
        districts=tuple(districts),
        household_sizes=sizes,
        school_ages=school,
        enrolment=number(top.get("enrolment", 0.98), "structured.enrolment", low=0, high=1),
        class_size=number(top.get("class_size", 25), "structured.class_size", low=1, high=200),
        work_ages=work,
        employment=number(top.get("employment", 0.65), "structured.employment", low=0, high=1),
        workplace_sizes=tuple(workplaces),
        commuting=number(top.get("commuting", 0.3), "structured.commuting", low=0, high=1),
        school_contacts=per_band["school"],
        work_contacts=per_band["work"],
        community_contacts=per_band["community"],
        community_mixing=mixing,
    )
    sources = _mapping(top.get("sources", {}), "structured.sources")
    return Structure(
        population=config,
        setting_weight=weights,  # type: ignore[arg-type]
        r0=number(top.get("r0", 3.11), "structured.r0", low=0.01, high=50),
        steps_per_day=int(
            number(
                top.get("steps_per_day", 1),
                "structured.steps_per_day",
                low=1,
                high=24,
                integer=True,
            )
        ),
        sources={str(k): str(v) for k, v in sources.items()},
    )


def _matrices(raw: object) -> ContactMatrices | None:
    """``structured.contacts.matrices: {file, area}``; the file's path is relative to
    services/model unless absolute."""
    if raw is None:
        return None
    where = "structured.contacts.matrices"
    spec = _mapping(raw, where)
    file, area = spec.get("file"), spec.get("area", "national")
    if not isinstance(file, str) or not file.strip():
        raise CityError(f"{where}.file: the path of a CSV of contact matrices is needed")
    if not isinstance(area, str) or not area.strip():
        raise CityError(f"{where}.area: must be a name (national, urban)")
    path = Path(file.strip())
    return load_matrices(path if path.is_absolute() else MODULE_DIR / path, area.strip(), where)


def _ages(value: object, where: str, number: Number) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise CityError(f"{where}: must be [first age, last age + 1]")
    first = int(number(value[0], f"{where}[0]", low=0, high=100, integer=True))
    end = int(number(value[1], f"{where}[1]", low=first + 1, high=101, integer=True))
    return first, end


def parse_interventions(
    raw: object,
    where: str,
    number: Number,
    when: Callable[[object, str], date],
    districts: tuple[str, ...],
) -> tuple[Intervention, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CityError(f"{where}: must be a list of interventions")
    out = []
    for n, item_raw in enumerate(raw):
        at = f"{where}[{n}]"
        item = _mapping(item_raw, at)
        kind = item.get("kind")
        if kind not in KINDS:
            raise CityError(f"{at}.kind: must be one of {', '.join(KINDS)} (got {kind!r})")
        start = when(item.get("from"), f"{at}.from")
        until = when(item["until"], f"{at}.until") if item.get("until") is not None else None
        if until is not None and until <= start:
            raise CityError(f"{at}.until: must be after {at}.from")
        factors: dict[str, float] = {}
        if kind in ("masks", "contacts"):
            raw_factors = _mapping(item.get("factors"), f"{at}.factors")
            for setting, value in raw_factors.items():
                if setting not in SETTINGS:
                    raise CityError(f"{at}.factors.{setting}: settings are {', '.join(SETTINGS)}")
                factors[setting] = number(value, f"{at}.factors.{setting}", low=0, high=10)
        district = -1
        if kind == "quarantine_zone":
            name = item.get("district")
            if name not in districts:
                raise CityError(f"{at}.district: must be one of {', '.join(districts)}")
            district = districts.index(str(name))
        share_default = 1.0 if kind == "quarantine_zone" else None
        share = 0.0
        if kind in ("work_from_home", "testing", "household_quarantine", "quarantine_zone"):
            value = item.get("share", share_default)
            share = number(value, f"{at}.share", low=0, high=1)
        delay = 0.0
        if kind in ("testing", "household_quarantine"):
            delay = number(item.get("delay_days", 0), f"{at}.delay_days", low=0, high=60)
        out.append(
            Intervention(
                kind=str(kind),
                start=start,
                until=until,
                share=share,
                delay_days=delay,
                factors=factors,
                district=district,
                why=str(item.get("why", "")),
            )
        )
    return tuple(out)


def build_policy(
    interventions: tuple[Intervention, ...],
    multipliers: list[tuple[int, float]],
    start: date,
    days: int,
) -> Policy:
    """Per-day arrays from the interventions; ``multipliers`` (first day, factor) scale
    every setting (a scenario's schedule relative to its first phase)."""
    policy = Policy.none(days)
    for first_day, factor in sorted(multipliers):
        policy.setting_factor[:, max(first_day, 0) :] = factor
    for item in interventions:
        first = max((item.start - start).days, 0)
        last = days if item.until is None else min(max((item.until - start).days, 0), days)
        span = slice(first, last)
        if item.kind == "schools_closed":
            policy.setting_factor[SETTINGS.index("school"), span] = 0.0
        elif item.kind in ("masks", "contacts"):
            for setting, factor in item.factors.items():
                policy.setting_factor[SETTINGS.index(setting), span] *= factor
        elif item.kind == "work_from_home":
            policy.work_from_home[span] = item.share
        elif item.kind == "quarantine_zone":
            policy.zone[span] = item.district
            policy.zone_cut[span] = item.share
        elif item.kind == "testing":
            policy.testing[span] = item.share
            policy.test_delay[span] = item.delay_days
        else:
            policy.tracing[span] = item.share
            policy.trace_delay[span] = item.delay_days
    return policy


def approximate_mixing(
    pyramid: tuple[int, ...], assortative: float = 0.6, width: float = 1.5
) -> npt.NDArray[np.float64]:
    """Rows of a community mixing matrix (who one's contacts are by five-year band):
    ``assortative`` of the contacts with people of about one's own age (a Gaussian of
    ``width`` bands), the rest in proportion to the population. The shape of Prem et
    al.'s "other" matrices, not their values (see scenarios.yaml)."""
    ten = np.asarray(pyramid, dtype=np.float64)
    five = np.repeat(ten[:8] / 2, 2)  # 0-4 ... 75-79, each ten-year band halved
    five[-1] += ten[8:].sum()  # the matrices' last band is 75+
    shares = five / five.sum()
    bands = np.arange(FIVE_YEAR_BANDS)
    near = np.exp(-((bands[:, None] - bands[None, :]) ** 2) / (2 * width**2)) * shares
    near = near / near.sum(axis=1, keepdims=True)
    return assortative * near + (1 - assortative) * shares[None, :]
