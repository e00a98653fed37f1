-- The admin panel: its users (with one role each), their sessions, and epidemic model
-- runs started from the panel.

CREATE TABLE panel_users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,39}$'),
    role           text NOT NULL CHECK (role IN
                       ('admin', 'analyst', 'epidemiologist', 'permits_officer',
                        'registry_officer')),
    password_hash  text NOT NULL,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

-- Only a hash of the session token is stored: a copy of this table opens no session.
CREATE TABLE panel_sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES panel_users (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX panel_sessions_expiry ON panel_sessions (expires_at);
CREATE INDEX panel_sessions_user ON panel_sessions (user_id);

CREATE TABLE model_runs (
    id            bigserial PRIMARY KEY,
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),  -- a heartbeat while running
    finished_at   timestamptz,
    state         text NOT NULL DEFAULT 'running'
                      CHECK (state IN ('running', 'done', 'failed')),
    request       jsonb NOT NULL,
    done          integer NOT NULL DEFAULT 0,
    total         integer NOT NULL,
    result        jsonb,
    chart         bytea,
    error         text
);
CREATE INDEX model_runs_created ON model_runs (created_at DESC);
