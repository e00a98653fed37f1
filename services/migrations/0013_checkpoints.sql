-- Checkpoints (roadblocks) and the passings logged at them. A checkpoint guards one
-- zone's boundary (by the zone's kind and name, so that every version of the zone is
-- the one in force at a passing's time); an admin assigns officers to checkpoints.
-- A traveller may register a passing by scanning the checkpoint's QR and sharing a
-- phone number: then the phone and the time are all that is kept.

CREATE TABLE checkpoints (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 120),
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    zone_kind   text NOT NULL CHECK (zone_kind IN ('district', 'sector', 'quarantine')),
    zone_name   text NOT NULL,
    register    text NOT NULL DEFAULT 'roadblock' CHECK (register IN ('city', 'roadblock')),
    qr_token    text NOT NULL UNIQUE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE checkpoint_officers (
    tg_user_id     bigint PRIMARY KEY REFERENCES officers (tg_user_id) ON DELETE CASCADE,
    checkpoint_id  bigint NOT NULL REFERENCES checkpoints (id),
    assigned_by    text NOT NULL,
    assigned_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE officer_invites ADD COLUMN checkpoint_id bigint REFERENCES checkpoints (id);

CREATE TABLE passings (
    id               bigserial PRIMARY KEY,
    checkpoint_id    bigint NOT NULL REFERENCES checkpoints (id),
    direction        text NOT NULL CHECK (direction IN ('in', 'out')),
    at               timestamptz NOT NULL,
    iin              text CHECK (iin ~ '^[0-9]{12}$'),
    plate            text,
    officer          bigint,
    permit_result    text,
    loose_match      boolean NOT NULL DEFAULT false,
    zone_id          bigint REFERENCES zones (id),  -- the zone version in force at ``at``
    restricted       boolean NOT NULL DEFAULT false,
    flagged          boolean NOT NULL DEFAULT false,
    phone            text,
    update_key       text UNIQUE,  -- the Telegram update that logged it: a retry adds nothing
    CHECK ((phone IS NOT NULL AND iin IS NULL AND plate IS NULL AND officer IS NULL)
        OR (phone IS NULL AND (iin IS NOT NULL OR plate IS NOT NULL) AND officer IS NOT NULL))
);
CREATE INDEX passings_checkpoint_at ON passings (checkpoint_id, at);
CREATE INDEX passings_at ON passings (at);
CREATE INDEX passings_flagged ON passings (at) WHERE flagged;
