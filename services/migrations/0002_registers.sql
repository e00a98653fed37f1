-- The first registers: venues, the health registry behind status colours, zones and
-- doctors. Later migrations extend them as their flows land. Rows loaded by
-- `citybots demo-data` carry a demo_key (NULL for real data), so a demo load is
-- idempotent and can never be mistaken for, or overwrite, real records.

CREATE TABLE venues (
    id                     bigserial PRIMARY KEY,
    bin                    text NOT NULL CHECK (bin ~ '^[0-9]{12}$'),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address                text NOT NULL DEFAULT '',
    latitude               double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude              double precision CHECK (longitude BETWEEN -180 AND 180),
    capacity               integer CHECK (capacity > 0),
    auto_checkout_minutes  integer NOT NULL DEFAULT 180 CHECK (auto_checkout_minutes > 0),
    demo_key               text UNIQUE,
    created_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pcr_results (
    id          bigserial PRIMARY KEY,
    iin         text NOT NULL CHECK (iin ~ '^[0-9]{12}$'),
    sampled_at  timestamptz NOT NULL,
    result_at   timestamptz NOT NULL CHECK (result_at >= sampled_at),
    result      text NOT NULL CHECK (result IN ('positive', 'negative')),
    laboratory  text NOT NULL,
    demo_key    text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (iin, sampled_at, laboratory)
);
CREATE INDEX pcr_results_iin ON pcr_results (iin, result_at DESC);

CREATE TABLE registered_contacts (
    id             bigserial PRIMARY KEY,
    iin            text NOT NULL CHECK (iin ~ '^[0-9]{12}$'),
    registered_at  timestamptz NOT NULL,
    isolation_end  timestamptz NOT NULL CHECK (isolation_end > registered_at),
    demo_key       text UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (iin, registered_at)
);
CREATE INDEX registered_contacts_iin ON registered_contacts (iin);

CREATE TABLE zones (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('district', 'sector', 'quarantine')),
    geometry    jsonb NOT NULL,
    demo_key    text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE doctors (
    id           bigserial PRIMARY KEY,
    full_name    text NOT NULL,
    district     text NOT NULL,
    invite_code  text NOT NULL UNIQUE,
    tg_user_id   bigint UNIQUE,
    demo_key     text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
