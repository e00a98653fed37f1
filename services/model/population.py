"""A synthetic city: households, school classes, workplaces and districts, built from
the distributions in the scenario file (``structured:`` in ``scenarios.yaml``, where
every table says where it comes from and what is approximated).

How it is built (all vectorised; 2 million people take a few seconds):

- ages: each person's ten-year band from the age pyramid, the year uniform within it;
- households: sizes drawn from the household-size distribution until everyone has a
  home; every household has a head aged 20 or more, and the other members are matched
  to heads by age (children to heads about 28 years older, adults to heads of their
  own age), so the marginals are exactly the drawn ones and households look like
  families rather than random sets;
- districts: households are placed in districts in proportion to their populations;
- school classes: the enrolled children of one district and one school year;
- workplaces: the employed adults, each working in their own district or (with the
  commuting share) in another one weighted by its jobs, grouped into workplaces whose
  sizes follow the workplace-size distribution.

People are numbered household by household, households district by district, so a
household's members and a district's residents are ranges of indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]

FIVE_YEAR_BANDS = 16  # 0-4, 5-9, ..., 70-74, 75+ (the contact matrices' bands)
SETTINGS = ("home", "school", "work", "community")
NO_GROUP = -1
STUDENT, WORKER = 1, 2


@dataclass(frozen=True)
class District:
    name: str
    population: int  # residents (public statistics), scaled to the model's population
    jobs: float  # relative number of jobs located in the district (for commuting)


@dataclass(frozen=True)
class PopulationConfig:
    """What the synthetic population is built from; ``scenarios.yaml`` documents each."""

    districts: tuple[District, ...]
    household_sizes: tuple[float, ...]  # share of households of 1, 2, ... people
    school_ages: tuple[int, int] = (6, 18)  # [first, last + 1)
    enrolment: float = 0.98
    class_size: float = 25.0  # mean; sizes drawn as 1 + Poisson(class_size - 1)
    work_ages: tuple[int, int] = (20, 65)
    employment: float = 0.65
    # Workplace sizes: (smallest, largest, share of workers) per size class.
    workplace_sizes: tuple[tuple[int, int, float], ...] = (
        (1, 9, 0.3),
        (10, 49, 0.3),
        (50, 250, 0.4),
    )
    commuting: float = 0.3  # share of workers (and of community contacts) across districts
    # Contacts per day by five-year band of the person (school, work, community), and
    # the community mixing matrix's rows (who those contacts are, by five-year band).
    school_contacts: tuple[float, ...] = (0.0,) * FIVE_YEAR_BANDS
    work_contacts: tuple[float, ...] = (0.0,) * FIVE_YEAR_BANDS
    community_contacts: tuple[float, ...] = (0.0,) * FIVE_YEAR_BANDS
    community_mixing: tuple[tuple[float, ...], ...] = ()
    # Contacts are everyone in one's class or workplace (Covasim's microstructured
    # layers), instead of the contacts per day above capped at the group's size.
    whole_group: bool = False
    grades_by_age: bool = True  # classes of one school year (False: any school age)
    # Households as families (a head aged 20+, members matched by age); False: people
    # placed at random (Covasim's hybrid population does so).
    family_households: bool = True
    # Mean contacts of pupils and of workers in static random networks (Covasim's
    # hybrid schools and workplaces: random partners among everyone of school or work
    # age), instead of classes and workplaces; 0: classes and workplaces.
    random_networks: tuple[float, float] = (0.0, 0.0)

    def scaled_districts(self, population: int) -> npt.NDArray[np.float64]:
        sizes = np.array([d.population for d in self.districts], dtype=np.float64)
        return sizes / sizes.sum() * population


@dataclass
class Population:
    """The people and the groups they belong to (indices into the arrays)."""

    age: I8  # years, 0-89
    band: I8  # the disease's ten-year band
    band5: I8  # the contact matrices' five-year band
    district: I8
    household: I32
    household_start: IntArray  # household h's members: household_start[h]:[h+1]
    role: I8  # 0, STUDENT or WORKER
    group: I32  # class or workplace of a student or worker, NO_GROUP otherwise
    group_start: IntArray  # group g's members: group_members[group_start[g]:[g+1]]
    group_members: I32
    group_district: I8  # where the class or workplace is
    bucket_start: IntArray  # people of (district, five-year band): bucket d*16+b
    bucket_members: I32
    district_names: tuple[str, ...]
    # What is derived from the city once and reused by its runs (per_member_contacts).
    cache: dict[object, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.age)

    def household_sizes(self) -> IntArray:
        return np.diff(self.household_start)

    def group_sizes(self) -> IntArray:
        return np.diff(self.group_start)


def _ages(rng: np.random.Generator, pyramid: npt.NDArray[np.float64], count: int) -> tuple[I8, I8]:
    band = rng.choice(len(pyramid), size=count, p=pyramid / pyramid.sum()).astype(np.int8)
    age = (band.astype(np.int64) * 10 + rng.integers(0, 10, count)).astype(np.int8)
    return band, age


def _chop(rng: np.random.Generator, total: int, sizes: IntArray) -> IntArray:
    """Group sizes summing exactly to ``total``: ``sizes`` are drawn repeatedly until
    they cover it and the last is cut."""
    if total <= 0:
        return np.zeros(0, np.int64)
    mean = max(float(sizes.mean()), 1.0)
    drawn = rng.permutation(sizes)
    while drawn.sum() < total:
        extra = rng.choice(sizes, size=int(total / mean) + 16)
        drawn = np.concatenate((drawn, extra))
    ends = np.cumsum(drawn)
    last = int(np.searchsorted(ends, total))
    out = drawn[: last + 1].copy()
    out[-1] -= int(ends[last] - total)
    return out[out > 0]


def _household_sizes(rng: np.random.Generator, config: PopulationConfig, n: int) -> IntArray:
    shares = np.asarray(config.household_sizes, dtype=np.float64)
    shares = shares / shares.sum()
    mean = float(shares @ np.arange(1, len(shares) + 1))
    draws = rng.choice(len(shares), size=int(n / mean * 1.1) + 16, p=shares) + 1
    return _chop(rng, n, draws.astype(np.int64))


def _fill_households(
    rng: np.random.Generator, sizes: IntArray, band: I8, age: I8
) -> npt.NDArray[np.int64]:
    """An order of the people such that consecutive runs of ``sizes`` are households:
    a head aged 20+ first, then members matched to heads by age."""
    n = len(age)
    households = len(sizes)
    adults = np.flatnonzero(age >= 20)
    if len(adults) < households:
        raise ValueError("too few adults for one head per household")
    heads = rng.choice(adults, size=households, replace=False)
    is_head = np.zeros(n, bool)
    is_head[heads] = True
    others = np.flatnonzero(~is_head)
    # Member slots of each household, keyed by its head's age; members keyed by the
    # age of the head they would live with.
    slot_household = np.repeat(np.arange(households), sizes - 1)
    slot_key = age[heads][slot_household] + rng.normal(0, 6, len(slot_household))
    member_age = age[others].astype(np.float64)
    member_key = np.where(member_age < 20, member_age + 28, member_age)
    member_key = member_key + rng.normal(0, 6, len(others))
    placed = np.empty(len(others), np.int64)
    placed[np.argsort(slot_key, kind="stable")] = others[np.argsort(member_key, kind="stable")]
    # Order: each household's head, then its members.
    order = np.empty(n, np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    order[starts] = heads
    member_positions = np.flatnonzero(~np.isin(np.arange(n), starts))
    order[member_positions] = placed  # slots are in household order already
    return order


def _groups(
    rng: np.random.Generator,
    people: IntArray,
    pool_key: IntArray,
    size_draws: IntArray,
) -> tuple[IntArray, IntArray]:
    """Split ``people`` into groups within each pool (same ``pool_key``): returns the
    group of each person (in ``people``'s order) and the pool of each group."""
    order = np.lexsort((rng.random(len(people)), pool_key))
    keys = pool_key[order]
    group_of = np.empty(len(people), np.int64)
    group_pool = []
    first = 0
    next_group = 0
    for key in np.unique(keys):
        last = int(np.searchsorted(keys, key, side="right"))
        sizes = _chop(rng, last - first, size_draws)
        ids = np.repeat(np.arange(next_group, next_group + len(sizes)), sizes)
        group_of[order[first:last]] = ids
        group_pool.extend([int(key)] * len(sizes))
        next_group += len(sizes)
        first = last
    return group_of, np.asarray(group_pool, dtype=np.int64)


def _workplace_sizes(rng: np.random.Generator, config: PopulationConfig, workers: int) -> IntArray:
    """Sizes of workplaces so that each size class holds its share of the workers."""
    classes = config.workplace_sizes
    shares = np.array([c[2] for c in classes], dtype=np.float64)
    shares = shares / shares.sum()
    draws = []
    for (low, high, _), share in zip(classes, shares, strict=True):
        target = share * max(workers, 1)
        mean = np.sqrt(low * high) if high > low else float(low)
        count = int(target / mean) + 4
        sizes = np.exp(rng.uniform(np.log(low), np.log(high + 1), count)).astype(np.int64)
        draws.append(np.clip(sizes, low, high))
    return np.concatenate(draws)


def _csr(groups: IntArray, count: int) -> tuple[IntArray, I32]:
    order = np.argsort(groups, kind="stable").astype(np.int32)
    start = np.concatenate(([0], np.cumsum(np.bincount(groups, minlength=count)))).astype(np.int64)
    return start, order


def _random_networks(
    rng: np.random.Generator,
    size: int,
    pools: tuple[IntArray, IntArray],
    contacts: tuple[float, float],
) -> tuple[I32, IntArray, I32]:
    """Static random networks as Covasim 4.0.1's hybrid schools and workplaces
    (starsim RandomNet, uniform_targets): in each pool, everyone draws
    round(Poisson(contacts) / 2) partners uniformly from the pool, and every edge goes
    both ways. Each person's "group" is then their own: themselves and their partners
    (the engine draws a target among a group's members and drops the attempts on
    oneself), so a network is the groups' special case."""
    group = np.full(size, NO_GROUP, np.int32)
    starts, lists = [np.zeros(1, np.int64)], []
    offset = 0
    for pool, mean in zip(pools, contacts, strict=True):
        count = len(pool)
        stubs = np.rint(rng.poisson(mean, count) / 2).astype(np.int64)
        source = np.repeat(np.arange(count), stubs)
        target = rng.integers(0, max(count, 1), len(source))
        keep = source != target
        ego = np.arange(count)
        a = np.concatenate((ego, source[keep], target[keep]))
        b = np.concatenate((ego, target[keep], source[keep]))
        order = np.argsort(a, kind="stable")
        degree = np.bincount(a, minlength=count)
        starts.append(starts[-1][-1] + np.cumsum(degree))
        lists.append(pool[b[order]])
        group[pool] = offset + ego
        offset += count
    return group, np.concatenate(starts), np.concatenate(lists).astype(np.int32)


def build_population(
    config: PopulationConfig, pyramid: tuple[int, ...], size: int, seed: int
) -> Population:
    """The synthetic city of ``size`` people; the same seed gives the same city."""
    if size < 10:
        raise ValueError("a structured population needs at least 10 people")
    rng = np.random.default_rng([seed, 0x5EED])
    band, age = _ages(rng, np.asarray(pyramid, dtype=np.float64), size)
    sizes = _household_sizes(rng, config, size)
    if config.family_households:
        order = _fill_households(rng, sizes, band, age)
    else:
        order = rng.permutation(size)
    band, age = band[order], age[order]
    household_start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    household = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    # Districts: consecutive households up to each district's share of the people.
    bounds = np.cumsum(config.scaled_districts(size))
    first_person = household_start[:-1]
    household_district = np.minimum(
        np.searchsorted(bounds, first_person, side="right"), len(bounds) - 1
    )
    district = household_district[household].astype(np.int8)
    years = age.astype(np.int64)
    role = np.zeros(size, np.int8)
    lo, hi = config.school_ages
    students = np.flatnonzero((years >= lo) & (years < hi) & (rng.random(size) < config.enrolment))
    role[students] = STUDENT
    wlo, whi = config.work_ages
    workers = np.flatnonzero(
        (years >= wlo) & (years < whi) & (role == 0) & (rng.random(size) < config.employment)
    )
    role[workers] = WORKER
    class_draws = 1 + rng.poisson(max(config.class_size - 1, 0), 4096)
    school_pool = district[students].astype(np.int64) * 256
    if config.grades_by_age:
        school_pool = school_pool + years[students]
    class_of, class_pool = _groups(rng, students, school_pool, class_draws.astype(np.int64))
    districts = len(config.districts)
    jobs = np.array([d.jobs for d in config.districts], dtype=np.float64)
    away = rng.random(len(workers)) < config.commuting
    work_district = district[workers].astype(np.int64)
    if districts > 1:
        elsewhere = rng.choice(districts, size=len(workers), p=jobs / jobs.sum())
        work_district = np.where(away, elsewhere, work_district)
    work_of, work_pool = _groups(
        rng, workers, work_district, _workplace_sizes(rng, config, len(workers))
    )
    classes = len(class_pool)
    group = np.full(size, NO_GROUP, np.int32)
    group[students] = class_of
    group[workers] = work_of + classes
    group_district = np.concatenate((class_pool // 256, work_pool)).astype(np.int8)
    members = np.flatnonzero(group >= 0)
    group_start, member_order = _csr(group[members].astype(np.int64), len(group_district))
    group_members = members[member_order].astype(np.int32)
    if max(config.random_networks) > 0:
        group, group_start, group_members = _random_networks(
            rng, size, (students, workers), config.random_networks
        )
        group_district = district[np.concatenate((students, workers))]
    band5 = np.minimum(years // 5, FIVE_YEAR_BANDS - 1).astype(np.int8)
    bucket = district.astype(np.int64) * FIVE_YEAR_BANDS + band5
    bucket_start, bucket_members = _csr(bucket, districts * FIVE_YEAR_BANDS)
    return Population(
        age=age,
        band=band,
        band5=band5,
        district=district,
        household=household,
        household_start=household_start,
        role=role,
        group=group,
        group_start=group_start,
        group_members=group_members,
        group_district=group_district,
        bucket_start=bucket_start,
        bucket_members=bucket_members,
        district_names=tuple(d.name for d in config.districts),
    )
