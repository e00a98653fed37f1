-- Ambulance (103) calls for respiratory infection, pushed by the dispatch systems (each
-- with an API key stored only as a hash, as laboratories) or imported as CSV. No name:
-- the dispatch system's call id only. A call's point is kept for the clusters and the
-- map; the retention job deletes calls after AMBULANCE_RETENTION_DAYS.
CREATE TABLE ambulance_systems (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- A group of calls close in space and time (a building, a block). A cluster that grows
-- into another is merged: the younger one points at the one kept.
CREATE TABLE ambulance_clusters (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    calls           integer NOT NULL,
    first_call_at   timestamptz NOT NULL,
    last_call_at    timestamptz NOT NULL,
    merged_into     bigint REFERENCES ambulance_clusters (id) ON DELETE SET NULL,
    acknowledged_at timestamptz,
    acknowledged_by text
);
CREATE INDEX ambulance_clusters_open ON ambulance_clusters (created_at)
    WHERE merged_into IS NULL;

CREATE TABLE ambulance_calls (
    id          bigserial PRIMARY KEY,
    system      text NOT NULL CHECK (length(system) BETWEEN 1 AND 200),
    call_id     text NOT NULL CHECK (call_id ~ '^[A-Za-z0-9._:/-]{1,64}$'),
    called_at   timestamptz NOT NULL,
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    address     text CHECK (length(address) <= 300),
    code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 20),
    outcome     text NOT NULL CHECK (outcome IN ('on_site', 'hospital', 'refused')),
    hospital    text CHECK (length(hospital) BETWEEN 1 AND 200),
    placed_at   timestamptz,
    source      text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    -- NULL until the cluster job has looked at the call (the job's incremental input)
    clustered_at timestamptz,
    cluster_id  bigint REFERENCES ambulance_clusters (id) ON DELETE SET NULL,
    UNIQUE (system, call_id),
    CHECK ((outcome = 'hospital') = (hospital IS NOT NULL AND placed_at IS NOT NULL)),
    CHECK (placed_at IS NULL OR placed_at >= called_at)
);
CREATE INDEX ambulance_calls_called_at ON ambulance_calls (called_at);
CREATE INDEX ambulance_calls_fresh ON ambulance_calls (id) WHERE clustered_at IS NULL;
CREATE INDEX ambulance_calls_cluster ON ambulance_calls (cluster_id) WHERE cluster_id IS NOT NULL;
