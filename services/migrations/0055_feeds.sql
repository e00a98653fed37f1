-- The situation centre's feeds (road traffic, public transport, incoming flights, hospital
-- beds, medical workers examined, pharmacies and quarantine centres, budget): figures,
-- never people. One row per feed, day (and hour, where the feed gives one) and key (a
-- camera, a route, a hospital, a budget item ...); its figures are a JSON object whose
-- names and types services/feeds/specs.py defines per feed and validates at import.
-- A later import of the same row with other figures replaces them (a correction); the
-- audit log records every import with its counts.

CREATE TABLE feed_records (
    feed         text NOT NULL,
    day          date NOT NULL,
    hour         smallint CHECK (hour BETWEEN 0 AND 23),  -- NULL: the whole day
    keys         text[] NOT NULL,
    at           timestamptz NOT NULL,  -- the start of the day or hour, in the city's time
    figures      jsonb NOT NULL CHECK (jsonb_typeof(figures) = 'object'),
    source       text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX feed_records_row ON feed_records (feed, day, hour, keys) NULLS NOT DISTINCT;
CREATE INDEX feed_records_at ON feed_records (at);

-- Systems that push a feed over the API (a key per source, as laboratories have): the
-- key is stored only as a hash; a source may push only the feeds it was given.
CREATE TABLE feed_sources (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    feeds       text[] NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
