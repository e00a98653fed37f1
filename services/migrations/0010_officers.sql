-- Police and checkpoint officers: they check permits in the staff bot. An admin invites
-- each one (one use, 7 days).

CREATE TABLE officers (
    tg_user_id  bigint PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('police', 'checkpoint')),
    full_name   text NOT NULL DEFAULT '',
    joined_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE officer_invites (
    token       text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('police', 'checkpoint')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_by     bigint,
    used_at     timestamptz
);
