"""Writing what the state machine decided: episodes opened and closed with the doctor's
alerts and the patients' notices queued in the same transaction, and the cases' tracking
states saved, a few statements per batch whatever its size."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.db import Connection
from services.outbox import Queued, enqueue_many
from services.quarantine.model import AlertKind, EpisodeView, IngestReport
from services.quarantine.tracking import Event, Opening, TrackState, family_of

_SAVE_STATES = """
UPDATE quarantine_cases c SET
    live_message_id = s.live_message_id, live_until = s.live_until,
    sharing_stopped_at = s.sharing_stopped_at, last_fix_at = s.last_fix_at,
    last_judged_at = s.last_judged_at, last_lat = s.last_lat, last_lon = s.last_lon,
    last_accuracy = s.last_accuracy, outside_streak = s.outside_streak,
    inside_streak = s.inside_streak, zone_state = s.zone_state,
    zone_episode_id = s.zone_episode_id, signal_episode_id = s.signal_episode_id,
    home_lat = s.home_lat, home_lon = s.home_lon, last_kept_fix_at = s.last_kept_fix_at,
    home_source = CASE WHEN s.home_lat IS NOT NULL AND c.home_source IS NULL
                       THEN 'patient' ELSE c.home_source END
FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[], $4::timestamptz[],
            $5::timestamptz[], $6::timestamptz[], $7::float8[], $8::float8[], $9::real[],
            $10::smallint[], $11::smallint[], $12::text[], $13::bigint[], $14::bigint[],
            $15::float8[], $16::float8[], $17::timestamptz[])
  AS s(id, live_message_id, live_until, sharing_stopped_at, last_fix_at, last_judged_at,
       last_lat, last_lon, last_accuracy, outside_streak, inside_streak, zone_state,
       zone_episode_id, signal_episode_id, home_lat, home_lon, last_kept_fix_at)
WHERE c.id = s.id
"""


async def emit(conn: Connection, events: list[Event], report: IngestReport) -> None:
    """Write what the state changes mean: episodes and the messages about them. Events
    are taken in rounds in which each case's episode family appears once, so that "left,
    back, left again" within one batch still opens, closes and opens in that order."""
    notices: list[Queued] = []
    opens: list[Opening] = []
    closes: list[Event] = []
    in_round: set[tuple[int, str]] = set()

    async def flush() -> None:
        closed = await close_episodes(conn, closes)
        report.closed += closed
        opened = await open_episodes(conn, opens)
        report.opened += [o.kind.value for o in opened]
        closes.clear()
        opens.clear()
        in_round.clear()

    for event in events:
        state = event.state
        if event.what in ("open", "close"):
            family = family_of(event)
            if (state.id, family) in in_round:
                await flush()
            in_round.add((state.id, family))
            if event.what == "open":
                opens.append(Opening(state, AlertKind(event.kind), event.at, event.distance))
            else:
                closes.append(event)
        elif event.what == "propose_home":
            report.home_proposed.append(state.id)
            accuracy = None if event.distance is None else round(event.distance)
            notices.append(
                Queued(
                    "quarantine",
                    state.patient_chat,
                    "quarantine_confirm_home",
                    {"accuracy": accuracy},
                    f"qhome:{state.id}:{event.at.isoformat()}",
                )
            )
        elif event.what == "sharing_stopped":
            notices.append(
                Queued(
                    "quarantine",
                    state.patient_chat,
                    "quarantine_patient",
                    {"kind": "sharing_stopped"},
                    f"qstop:{state.id}:{event.at.isoformat()}",
                )
            )
    await flush()
    await enqueue_many(conn, notices)


async def open_episodes(conn: Connection, opens: list[Opening]) -> list[Opening]:
    """Open episodes (one of each family per case at a time: a family already open is
    left as it is) and queue the doctor's alert and the patient's notice."""
    if not opens:
        return []
    rows = await conn.fetch(
        "INSERT INTO quarantine_episodes (case_id, family, kind, opened_at, distance_m) "
        "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], "
        "$5::real[]) ON CONFLICT (case_id, family) WHERE closed_at IS NULL DO NOTHING "
        "RETURNING id, case_id, family",
        [o.state.id for o in opens],
        [o.family for o in opens],
        [o.kind.value for o in opens],
        [o.at for o in opens],
        [o.distance for o in opens],
    )
    ids = {(r["case_id"], r["family"]): r["id"] for r in rows}
    opened: list[Opening] = []
    messages: list[Queued] = []
    for opening in opens:
        episode_id = ids.get((opening.state.id, opening.family))
        if episode_id is None:
            continue
        state = opening.state
        if opening.family == "zone":
            state.zone_episode_id = episode_id
        else:
            state.signal_episode_id = episode_id
            state.signal_kind = opening.kind.value
        view = EpisodeView.unanswered(
            episode_id, state.code, opening.kind.value, opening.at, opening.distance, state.phone
        )
        params = view.params()
        messages.append(
            Queued("doctor", state.doctor_chat, "quarantine_alert", params, f"qalert:{episode_id}")
        )
        messages.append(
            Queued(
                "quarantine",
                state.patient_chat,
                "quarantine_patient",
                {"kind": opening.kind.value, "distance": params["distance"]},
                f"qpatient:{episode_id}",
            )
        )
        opened.append(opening)
    await enqueue_many(conn, messages)
    return opened


async def close_episodes(conn: Connection, closes: list[Event]) -> list[str]:
    """End open episodes (back home, signal back) and tell the doctor and the patient."""
    if not closes:
        return []
    rows = await conn.fetch(
        "UPDATE quarantine_episodes e SET closed_at = s.at, close_kind = s.how "
        "FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) "
        "AS s(case_id, family, at, how) "
        "WHERE e.case_id = s.case_id AND e.family = s.family AND e.closed_at IS NULL "
        "RETURNING e.id, e.case_id, e.kind, s.how, s.at",
        [e.state.id for e in closes],
        [family_of(e) for e in closes],
        [e.at for e in closes],
        [e.kind for e in closes],
    )
    states = {e.state.id: e.state for e in closes}
    messages: list[Queued] = []
    for row in rows:
        state = states[row["case_id"]]
        if state.zone_episode_id == row["id"]:
            state.zone_episode_id = None
        if state.signal_episode_id == row["id"]:
            state.signal_episode_id = None
            state.signal_kind = None
        messages.append(
            Queued(
                "doctor",
                state.doctor_chat,
                "quarantine_closed",
                {
                    "code": state.code,
                    "kind": row["how"],
                    "at": row["at"].isoformat(),
                    "opened_kind": row["kind"],
                },
                f"qclosed:{row['id']}",
            )
        )
        messages.append(
            Queued(
                "quarantine",
                state.patient_chat,
                "quarantine_patient",
                {"kind": row["how"]},
                f"qpatient:{row['id']}:closed",
            )
        )
    await enqueue_many(conn, messages)
    return [row["how"] for row in rows]


async def supersede(conn: Connection, episode_ids: list[int | None], at: datetime) -> None:
    """Close signal episodes that a newer alert replaces."""
    await conn.execute(
        "UPDATE quarantine_episodes SET closed_at = $2, close_kind = 'superseded' "
        "WHERE id = ANY($1::bigint[])",
        episode_ids,
        at,
    )


async def save_states(conn: Connection, states: Iterable[TrackState]) -> None:
    states = list(states)
    await conn.execute(
        _SAVE_STATES,
        [s.id for s in states],
        [s.live_message_id for s in states],
        [s.live_until for s in states],
        [s.sharing_stopped_at for s in states],
        [s.last_fix_at for s in states],
        [s.last_judged_at for s in states],
        [s.last_lat for s in states],
        [s.last_lon for s in states],
        [s.last_accuracy for s in states],
        [s.outside_streak for s in states],
        [s.inside_streak for s in states],
        [s.zone_state for s in states],
        [s.zone_episode_id for s in states],
        [s.signal_episode_id for s in states],
        [s.home_lat for s in states],
        [s.home_lon for s in states],
        [s.last_kept_fix_at for s in states],
    )
