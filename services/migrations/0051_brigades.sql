-- Disinfection brigades: planned by the panel's `operations` role, working in the staff
-- bot. A brigade's members join by a one-use invite (as officers). A day's plan is a list
-- of tasks (a zone, or a line or polygon drawn on the map) in order, each with a method.
-- While a task is started, the members' live locations are kept as its track: the
-- evidence of the area covered, from which a done task's clean zones and their coverage
-- are computed. Tracks and photos are deleted after BRIGADE_TRACK_RETENTION_DAYS.
ALTER TABLE panel_users DROP CONSTRAINT panel_users_role_check;
ALTER TABLE panel_users ADD CONSTRAINT panel_users_role_check CHECK (role IN
    ('admin', 'analyst', 'epidemiologist', 'permits_officer', 'registry_officer',
     'operations'));

CREATE TABLE brigades (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    district    text NOT NULL CHECK (length(district) BETWEEN 1 AND 100),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE brigade_members (
    tg_user_id  bigint PRIMARY KEY,
    brigade_id  bigint NOT NULL REFERENCES brigades (id) ON DELETE CASCADE,
    full_name   text NOT NULL DEFAULT '',
    joined_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE brigade_invites (
    token       text PRIMARY KEY,
    brigade_id  bigint NOT NULL REFERENCES brigades (id) ON DELETE CASCADE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_by     bigint,
    used_at     timestamptz
);

CREATE TABLE brigade_tasks (
    id            bigserial PRIMARY KEY,
    brigade_id    bigint NOT NULL REFERENCES brigades (id) ON DELETE CASCADE,
    day           date NOT NULL,
    position      integer NOT NULL CHECK (position >= 1),
    method        text NOT NULL CHECK (method IN ('surface', 'indoor', 'vehicle')),
    zone_id       bigint REFERENCES zones (id) ON DELETE SET NULL,
    area_name     text NOT NULL CHECK (length(area_name) BETWEEN 1 AND 200),
    -- GeoJSON (longitude, latitude): the zone's polygon, or a drawn LineString/Polygon
    area          jsonb NOT NULL,
    state         text NOT NULL DEFAULT 'planned'
                  CHECK (state IN ('planned', 'started', 'done', 'blocked')),
    started_at    timestamptz,
    finished_at   timestamptz,
    blocked_reason text CHECK (length(blocked_reason) <= 500),
    -- share of the area covered by the track buffered by the spraying width (0..1)
    coverage      real CHECK (coverage BETWEEN 0 AND 1),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (brigade_id, day, position)
);
CREATE INDEX brigade_tasks_day ON brigade_tasks (day);
CREATE INDEX brigade_tasks_zone_done ON brigade_tasks (zone_id, finished_at)
    WHERE state = 'done';

CREATE TABLE brigade_fixes (
    task_id     bigint NOT NULL REFERENCES brigade_tasks (id) ON DELETE CASCADE,
    tg_user_id  bigint NOT NULL,
    message_id  integer NOT NULL,
    fixed_at    timestamptz NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    accuracy    real,
    PRIMARY KEY (task_id, tg_user_id, message_id, fixed_at)
);
CREATE INDEX brigade_fixes_age ON brigade_fixes (fixed_at);

CREATE TABLE brigade_photos (
    id          bigserial PRIMARY KEY,
    task_id     bigint NOT NULL REFERENCES brigade_tasks (id) ON DELETE CASCADE,
    tg_user_id  bigint NOT NULL,
    file_id     text NOT NULL CHECK (length(file_id) <= 300),
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX brigade_photos_age ON brigade_photos (sent_at);
