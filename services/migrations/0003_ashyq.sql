-- Ashyq: the health registry's remaining parts, citizens, venues' entrances and QR
-- codes, visits, exposure notices, the notification outbox, disputes and the audit log.

CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE pcr_results ADD COLUMN source text NOT NULL DEFAULT 'import';

-- A positive result's isolation period: by rule (POSITIVE_ISOLATION_DAYS after the
-- result) unless a health-registry officer corrected it (set_by names them).
CREATE TABLE case_isolations (
    pcr_result_id  bigint PRIMARY KEY REFERENCES pcr_results (id) ON DELETE CASCADE,
    iin            text NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL CHECK (ends_at > starts_at),
    set_by         text NOT NULL DEFAULT 'rule',
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_isolations_iin ON case_isolations (iin);

-- The citizens' phone register: which phone numbers belong to an IIN (from eGov / PSC).
CREATE TABLE citizen_phones (
    iin          text NOT NULL CHECK (iin ~ '^[0-9]{12}$'),
    phone        text NOT NULL CHECK (phone ~ '^\+7[0-9]{10}$'),
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iin, phone)
);

-- A Telegram account linked to an IIN, after its phone matched the register.
CREATE TABLE citizens (
    tg_user_id  bigint PRIMARY KEY,
    iin         text NOT NULL UNIQUE CHECK (iin ~ '^[0-9]{12}$'),
    phone       text NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE labs (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

ALTER TABLE venues
    ADD COLUMN category text NOT NULL DEFAULT 'other',
    ADD COLUMN capacity_policy text NOT NULL DEFAULT 'warn'
        CHECK (capacity_policy IN ('warn', 'refuse')),
    ALTER COLUMN auto_checkout_minutes SET DEFAULT 240;

CREATE TABLE entrances (
    id        bigserial PRIMARY KEY,
    venue_id  bigint NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name      text NOT NULL,
    UNIQUE (venue_id, name)
);

-- A QR code belongs to an entrance and a direction, never to a visitor.
CREATE TABLE venue_codes (
    token        text PRIMARY KEY,
    entrance_id  bigint NOT NULL REFERENCES entrances (id) ON DELETE CASCADE,
    direction    text NOT NULL CHECK (direction IN ('entry', 'exit')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX venue_codes_current ON venue_codes (entrance_id, direction)
    WHERE revoked_at IS NULL;

CREATE TABLE venue_staff (
    venue_id    bigint NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    tg_user_id  bigint NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'staff')),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue_id, tg_user_id)
);
CREATE INDEX venue_staff_user ON venue_staff (tg_user_id);

CREATE TABLE staff_invites (
    code        text PRIMARY KEY,
    venue_id    bigint NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    created_by  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_by     bigint,
    used_at     timestamptz
);

-- A stay at a venue, or a refused attempt (admitted = false, closed at once).
CREATE TABLE visits (
    id                bigserial PRIMARY KEY,
    venue_id          bigint NOT NULL REFERENCES venues (id),
    entrance_id       bigint REFERENCES entrances (id),
    iin               text NOT NULL,
    tg_user_id        bigint,
    via               text NOT NULL CHECK (via IN ('qr', 'staff')),
    staff_tg_user_id  bigint,
    status            text NOT NULL CHECK (status IN ('red', 'yellow', 'green', 'blue')),
    admitted          boolean NOT NULL,
    checked_in_at     timestamptz NOT NULL DEFAULT now(),
    checked_out_at    timestamptz,
    checkout_kind     text CHECK (checkout_kind IN ('scan', 'auto', 'staff', 'moved', 'closing', 'refused')),
    stay              tstzrange GENERATED ALWAYS AS (
                          tstzrange(checked_in_at, COALESCE(checked_out_at, 'infinity'::timestamptz), '[)')
                      ) STORED,
    CHECK (checked_out_at IS NULL OR checked_out_at >= checked_in_at)
);
-- One open stay per person: a re-scan or a second scan in the same second finds it.
CREATE UNIQUE INDEX visits_one_open_stay ON visits (iin) WHERE admitted AND checked_out_at IS NULL;
CREATE INDEX visits_overlap ON visits USING gist (venue_id, stay) WHERE admitted;
CREATE INDEX visits_by_person ON visits (iin, checked_in_at DESC);
CREATE INDEX visits_open_by_venue ON visits (venue_id, checked_in_at)
    WHERE admitted AND checked_out_at IS NULL;
CREATE INDEX visits_by_venue_time ON visits (venue_id, checked_in_at);

CREATE TABLE exposure_notices (
    id                  bigserial PRIMARY KEY,
    positive_result_id  bigint NOT NULL REFERENCES pcr_results (id) ON DELETE CASCADE,
    visit_id            bigint NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
    exposed_iin         text NOT NULL,
    venue_id            bigint NOT NULL REFERENCES venues (id),
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (positive_result_id, visit_id)
);

-- Messages to people that must not be lost: sent later if Telegram is down or busy,
-- and once (dedupe_key).
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    bot              text NOT NULL,
    chat_id          bigint NOT NULL,
    kind             text NOT NULL,
    params           jsonb NOT NULL DEFAULT '{}',
    dedupe_key       text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    claimed_until    timestamptz,
    sent_at          timestamptz,
    failed_at        timestamptz,
    last_error       text
);
CREATE INDEX outbox_due ON outbox (bot, next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE status_disputes (
    id              bigserial PRIMARY KEY,
    tg_user_id      bigint NOT NULL,
    iin             text NOT NULL,
    status_shown    text NOT NULL,
    claim           text NOT NULL CHECK (length(claim) BETWEEN 1 AND 2000),
    test_reference  text CHECK (length(test_reference) <= 100),
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'upheld', 'rejected')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text,
    resolution      text
);
CREATE INDEX status_disputes_open ON status_disputes (created_at) WHERE state = 'open';

-- Every change an officer makes to the registry: who, when, why.
CREATE TABLE registry_corrections (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    officer     text NOT NULL,
    iin         text NOT NULL,
    action      text NOT NULL,
    reason      text NOT NULL,
    dispute_id  bigint REFERENCES status_disputes (id),
    details     jsonb NOT NULL DEFAULT '{}'
);

-- Who looked at or changed what. Subjects may be IINs: this table is access-controlled
-- data, never a log file.
CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    subject  text,
    details  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
