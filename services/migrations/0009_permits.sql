-- Movement permits: organisations from the tax register, the activities an admin allows,
-- and permits in two registers (city movement and roadblock, i.e. intercity, movement).

CREATE TABLE organisations (
    bin            text PRIMARY KEY CHECK (bin ~ '^[0-9]{12}$'),
    name           text NOT NULL,
    activity_code  text NOT NULL,
    head_phone     text NOT NULL,
    allowed        boolean NOT NULL,
    permit_quota   integer NOT NULL DEFAULT 100 CHECK (permit_quota >= 0),
    source         text,
    imported_at    timestamptz NOT NULL DEFAULT now()
);

-- Which activity codes may receive permits: configuration an admin changes.
CREATE TABLE allowed_activities (
    code        text PRIMARY KEY,
    note        text NOT NULL DEFAULT '',
    changed_by  text NOT NULL DEFAULT 'migration',
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE permits (
    id           bigserial PRIMARY KEY,
    register     text NOT NULL CHECK (register IN ('city', 'roadblock')),
    bin          text NOT NULL REFERENCES organisations (bin),
    iin          text CHECK (iin ~ '^[0-9]{12}$'),
    plate        text,
    purpose      text NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'approved', 'rejected', 'revoked')),
    reason       text,
    decided_by   text,
    decided_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (iin IS NOT NULL OR plate IS NOT NULL),
    CHECK (valid_until > valid_from)
);
CREATE INDEX permits_iin ON permits (iin, valid_until) WHERE iin IS NOT NULL;
CREATE INDEX permits_plate ON permits (plate, valid_until) WHERE plate IS NOT NULL;
CREATE INDEX permits_bin ON permits (bin, created_at);
