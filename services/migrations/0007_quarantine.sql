-- Home quarantine: doctors, patients' cases, live-location fixes and alert episodes.

-- doctors (0002) join by a one-use invite from an admin; some are on the district's duty
-- list, which receives alerts nobody acknowledged in time.
ALTER TABLE doctors ALTER COLUMN invite_code DROP NOT NULL;
ALTER TABLE doctors ADD COLUMN on_duty boolean NOT NULL DEFAULT false;
ALTER TABLE doctors ADD COLUMN joined_at timestamptz;
CREATE INDEX doctors_duty ON doctors (district) WHERE on_duty;

CREATE TABLE doctor_invites (
    token       text PRIMARY KEY,
    district    text NOT NULL,
    on_duty     boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_by     bigint,
    used_at     timestamptz
);

CREATE TABLE quarantine_cases (
    id                  bigserial PRIMARY KEY,
    code                text NOT NULL UNIQUE,
    doctor_id           bigint NOT NULL REFERENCES doctors (id),
    district            text NOT NULL,
    iin                 text,
    isolation_end       date NOT NULL,
    invite_token        text NOT NULL UNIQUE,
    home_lat            double precision,
    home_lon            double precision,
    home_source         text CHECK (home_source IN ('doctor', 'patient')),
    home_confirmed_at   timestamptz,
    home_rejected_at    timestamptz,
    patient_tg_user_id  bigint,
    phone               text,
    consented_at        timestamptz,
    declined_at         timestamptz,
    live_message_id     integer,
    live_until          timestamptz,
    live_reminded_for   timestamptz,
    sharing_stopped_at  timestamptz,
    last_fix_at         timestamptz,
    last_judged_at      timestamptz,
    last_lat            double precision,
    last_lon            double precision,
    last_accuracy       real,
    outside_streak      smallint NOT NULL DEFAULT 0,
    zone_state          text NOT NULL DEFAULT 'unknown'
                        CHECK (zone_state IN ('unknown', 'home', 'outside')),
    zone_episode_id     bigint,
    signal_episode_id   bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    close_reason        text,
    CHECK ((home_lat IS NULL) = (home_lon IS NULL))
);
-- One open case per Telegram account; the ingest path finds cases by account.
CREATE UNIQUE INDEX quarantine_cases_patient ON quarantine_cases (patient_tg_user_id)
    WHERE closed_at IS NULL;
CREATE INDEX quarantine_cases_doctor ON quarantine_cases (doctor_id) WHERE closed_at IS NULL;
CREATE INDEX quarantine_cases_ending ON quarantine_cases (isolation_end) WHERE closed_at IS NULL;

-- Raw fixes, kept for the retention period only. A fix is identified by its live
-- message, the time Telegram stamped on it (whole seconds) and the point: a duplicate
-- delivery adds nothing, two different points in the same second are both kept.
CREATE TABLE location_fixes (
    case_id     bigint NOT NULL REFERENCES quarantine_cases (id) ON DELETE CASCADE,
    message_id  integer NOT NULL,
    fixed_at    timestamptz NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    accuracy    real,
    verdict     text NOT NULL,
    distance_m  real,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, message_id, fixed_at, latitude, longitude)
);
CREATE INDEX location_fixes_age ON location_fixes USING brin (received_at);

-- An episode is one violation from its start to its end: one alert to the doctor.
-- family 'zone' (left home) or 'signal' (no usable location); at most one of each open.
CREATE TABLE quarantine_episodes (
    id               bigserial PRIMARY KEY,
    case_id          bigint NOT NULL REFERENCES quarantine_cases (id) ON DELETE CASCADE,
    family           text NOT NULL CHECK (family IN ('zone', 'signal')),
    kind             text NOT NULL,
    opened_at        timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    distance_m       real,
    closed_at        timestamptz,
    close_kind       text,
    acknowledged_at  timestamptz,
    acknowledged_by  bigint,
    called_at        timestamptz,
    called_by        bigint,
    resolved_at      timestamptz,
    resolved_by      bigint,
    escalated_at     timestamptz
);
CREATE UNIQUE INDEX quarantine_episodes_open ON quarantine_episodes (case_id, family)
    WHERE closed_at IS NULL;
-- Escalation counts from when the alert was raised (opened_at may be back-dated to the
-- moment the silence began).
CREATE INDEX quarantine_episodes_unacknowledged ON quarantine_episodes (created_at)
    WHERE acknowledged_at IS NULL AND escalated_at IS NULL AND closed_at IS NULL;
