"""Clusters of events close in space and time (ambulance calls from one building or block).

Two events are neighbours when they are at most ``meters`` apart and at most ``seconds``
apart in time. An event with at least ``minimum`` neighbours (itself included) is a
*core*; a cluster is a group of events joined through cores (DBSCAN's rule, with time as
a third dimension). The computation is incremental: given the events near the new ones
in time and the clusters they already belong to, :func:`assign` says which events join
which cluster, which clusters are new and which merge, without looking at the rest.

Everything is vectorised with numpy: events are put in cells of ``meters`` x ``meters`` x
``seconds``, so that every neighbour of an event lies in the 27 cells around its own, found
by a binary search in the sorted cell keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from geofence.distance import metres_per_degree

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ClusterRule:
    meters: float = 100.0
    seconds: float = 3 * 86400.0
    minimum: int = 5


def project(latitude: FloatArray, longitude: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Metres east and north on the plane tangent at the events' mean latitude: within a
    city (tens of kilometres) off by well under a metre at 100 m, as geofence.distance."""
    if latitude.size == 0:
        return latitude.copy(), longitude.copy()
    east_scale, north_scale = metres_per_degree(float(np.mean(latitude)))
    east = longitude * east_scale
    north = latitude * north_scale
    return east, north


def neighbour_pairs(
    x: FloatArray, y: FloatArray, t: FloatArray, among: IntArray, rule: ClusterRule
) -> tuple[IntArray, IntArray]:
    """Every pair (i, j), i in ``among``, of neighbours (i == j included)."""
    n = x.size
    if n == 0 or among.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    cx = np.floor((x - x.min()) / rule.meters).astype(np.int64)
    cy = np.floor((y - y.min()) / rule.meters).astype(np.int64)
    ct = np.floor((t - t.min()) / rule.seconds).astype(np.int64)
    span_y, span_t = int(cy.max()) + 3, int(ct.max()) + 3
    keys = ((cx + 1) * span_y + (cy + 1)) * span_t + (ct + 1)
    order = np.argsort(keys, kind="stable")
    cells, starts, sizes = np.unique(keys[order], return_index=True, return_counts=True)
    # Needles in order: numpy's binary search then starts from the last answer (ten
    # times faster on half a million keys than needles in any order).
    among = among[np.argsort(keys[among], kind="stable")]
    firsts: list[IntArray] = []
    seconds: list[IntArray] = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dt in (-1, 0, 1):
                wanted = keys[among] + (dx * span_y + dy) * span_t + dt
                at = np.minimum(np.searchsorted(cells, wanted), cells.size - 1)
                counts = np.where(cells[at] == wanted, sizes[at], 0)
                total = int(counts.sum())
                if total == 0:
                    continue
                owners = np.repeat(among, counts)
                offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
                candidates = order[np.repeat(starts[at], counts) + offsets]
                near = (np.hypot(x[owners] - x[candidates], y[owners] - y[candidates])) <= (
                    rule.meters
                )
                near &= np.abs(t[owners] - t[candidates]) <= rule.seconds
                firsts.append(owners[near])
                seconds.append(candidates[near])
    if not firsts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(firsts), np.concatenate(seconds)


@dataclass
class Assignment:
    """What :func:`assign` decided. ``cluster[i]``: the event's cluster after the step,
    an existing id (> 0), a new cluster's label (< 0) or 0 (none); ``merged``: existing
    clusters absorbed into another (id -> id kept); ``new``: labels of new clusters."""

    cluster: IntArray
    merged: dict[int, int] = field(default_factory=dict)
    new: list[int] = field(default_factory=list)
    cores: int = 0


def _components(size: int, a: IntArray, b: IntArray) -> IntArray:
    """Each node's component label (its smallest member), by label propagation with
    pointer jumping: a few rounds, as clusters are small in diameter."""
    labels = np.arange(size, dtype=np.int64)
    if a.size == 0:
        return labels
    while True:
        low = np.minimum(labels[a], labels[b])
        before = labels.copy()
        np.minimum.at(labels, a, low)
        np.minimum.at(labels, b, low)
        labels = labels[labels]
        if np.array_equal(labels, before):
            return labels


def assign(
    x: FloatArray,
    y: FloatArray,
    t: FloatArray,
    known: IntArray,
    fresh: BoolArray,
    rule: ClusterRule,
) -> Assignment:
    """Cluster the ``fresh`` events into the ``known`` clusters (0: none) of the others.

    The events passed must hold every event within twice the rule's time of a fresh one
    (its neighbours, and theirs): an event farther away can neither change a fresh one's
    core status nor be changed by it."""
    n = x.size
    fresh_idx = np.flatnonzero(fresh).astype(np.int64)
    a, b = neighbour_pairs(x, y, t, fresh_idx, rule)
    near_fresh = fresh.copy()
    near_fresh[b] = True
    # The neighbours' own neighbours, for their core status: pairs of fresh events are
    # known already.
    more_a, more_b = neighbour_pairs(x, y, t, np.flatnonzero(near_fresh & ~fresh), rule)
    a, b = np.concatenate([a, more_a]), np.concatenate([b, more_b])
    affected = np.flatnonzero(near_fresh)
    degree = np.bincount(a, minlength=n)
    core = np.zeros(n, dtype=bool)
    core[affected] = degree[affected] >= rule.minimum
    keep = core[a] & (a != b)
    a, b = a[keep], b[keep]
    # Events of one known cluster are joined through a node standing for the cluster.
    ids = np.unique(known[known > 0])
    node_of_id = {int(i): n + k for k, i in enumerate(ids)}
    members = np.flatnonzero(known > 0)
    if members.size:
        cluster_nodes = n + np.searchsorted(ids, known[members])
        a = np.concatenate([a, members])
        b = np.concatenate([b, cluster_nodes])
    labels = _components(n + ids.size, a, b)
    result = Assignment(cluster=known.copy(), cores=int(core.sum()))
    touched = np.zeros(n + ids.size, dtype=bool)
    touched[a] = True
    touched[b] = True
    component_core = np.zeros(n + ids.size, dtype=bool)
    component_core[labels[np.flatnonzero(core)]] = True
    kept: dict[int, int] = {}
    for cluster_id, node in node_of_id.items():  # ids ascending: the oldest kept
        root = int(labels[node])
        if root in kept:
            result.merged[cluster_id] = kept[root]
        else:
            kept[root] = cluster_id
    in_cluster = np.flatnonzero(touched[:n] & component_core[labels[:n]])
    next_label = -1
    for root in np.unique(labels[in_cluster]):
        root = int(root)
        if root not in kept:
            kept[root] = next_label
            result.new.append(next_label)
            next_label -= 1
    if in_cluster.size:
        roots = labels[in_cluster]
        result.cluster[in_cluster] = [kept[int(r)] for r in roots]
    for old, new in result.merged.items():
        result.cluster[known == old] = new
    return result
