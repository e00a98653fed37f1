"""How a case is read from PostgreSQL: the columns every case query selects, the row
locks ingest and the sweep take, and the mapping of rows to the plain values."""

from __future__ import annotations

from datetime import datetime

from services.db import from_row
from services.quarantine.model import Case, CaseSummary, EpisodeView, Row
from services.validation import Coordinates

CASE_COLUMNS = """
    c.id, c.code, c.doctor_id, c.district, c.isolation_end, c.invite_token, c.home_lat,
    c.home_lon, c.home_confirmed_at, c.home_rejected_at, c.patient_tg_user_id, c.phone,
    c.consented_at, c.live_message_id, c.live_until, c.live_reminded_for,
    c.sharing_stopped_at, c.last_fix_at, c.last_judged_at, c.last_lat, c.last_lon,
    c.last_accuracy, c.outside_streak, c.inside_streak, c.zone_state, c.zone_episode_id,
    c.signal_episode_id, c.closed_at, c.last_kept_fix_at, d.tg_user_id AS doctor_tg_user_id,
    ze.kind AS zone_kind, se.kind AS signal_kind
"""
CASE_FROM = """
    FROM quarantine_cases c
    JOIN doctors d ON d.id = c.doctor_id
    LEFT JOIN quarantine_episodes ze ON ze.id = c.zone_episode_id
    LEFT JOIN quarantine_episodes se ON se.id = c.signal_episode_id
"""

LOCK_BY_PATIENT = f"""
SELECT {CASE_COLUMNS} {CASE_FROM}
 WHERE c.patient_tg_user_id = ANY($1::bigint[]) AND c.closed_at IS NULL
   AND c.consented_at IS NOT NULL
 ORDER BY c.id
   FOR UPDATE OF c
"""

LOCK_BY_ID = f"""
SELECT {CASE_COLUMNS} {CASE_FROM}
 WHERE c.id = ANY($1::bigint[]) AND c.closed_at IS NULL AND c.consented_at IS NOT NULL
 ORDER BY c.id
   FOR UPDATE OF c
"""

EPISODE_SELECT = (
    "SELECT e.*, c.code, c.phone FROM quarantine_episodes e "
    "JOIN quarantine_cases c ON c.id = e.case_id "
)


def case_of_row(row: Row) -> Case:
    home = None
    if row["home_lat"] is not None:
        home = Coordinates(row["home_lat"], row["home_lon"])
    return from_row(
        Case,
        row,
        home=home,
        home_confirmed=row["home_confirmed_at"] is not None,
        consented=row["consented_at"] is not None,
        open_kinds=tuple(k for k in (row["zone_kind"], row["signal_kind"]) if k),
        closed=row["closed_at"] is not None,
    )


def episode_head(row: Row) -> tuple[int, str, str, datetime, float | None, str | None]:
    """What every view of an episode starts with: the episode's id, its case's code, its
    kind, when it opened, how far from home, the patient's phone."""
    return row["id"], row["code"], row["kind"], row["opened_at"], row["distance_m"], row["phone"]


def episode_of_row(row: Row) -> EpisodeView:
    return EpisodeView(
        *episode_head(row),
        row["close_kind"],
        row["acknowledged_at"] is not None,
        row["called_at"] is not None,
        row["resolved_at"] is not None,
        row["escalated_at"] is not None,
    )


def summary_of_row(row: Row) -> CaseSummary:
    case = case_of_row(row)
    if case.patient_tg_user_id is None or not case.consented:
        state = "waiting"
    elif row["signal_kind"]:
        state = "silent"
    elif case.zone_state == "outside":
        state = "outside"
    elif case.last_fix_at is None:
        state = "no_fix"
    elif not case.home_confirmed:
        state = "home_unconfirmed"
    else:
        state = "home"
    return CaseSummary(case.code, state, case.last_fix_at, case.isolation_end, case.open_kinds)
