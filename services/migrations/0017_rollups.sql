-- The situation centre reads hourly and daily roll-ups, never the raw event tables.
--
-- rollup_hourly: one count per metric, UTC hour and key (a laboratory, a district, a
-- topic ...). rollup_daily: the same summed over the city's days. Both outlive the raw
-- rows: when retention deletes old visits, the counts of their hours stay.
--
-- rollup_state remembers the time zone the days were cut in and the last run; with no
-- row (a new or upgraded database) or another time zone, the job rebuilds everything.
--
-- rollup_dirty is an append-only list of the hours whose raw rows changed. Statement
-- triggers add to it in the same transaction as the change, so a committed event always
-- has a committed mark; the roll-up job recomputes the marked hours from the raw rows
-- and deletes exactly the marks it saw (see services/rollups.py). Appending (no unique
-- key) means concurrent check-ins never wait on each other here.

CREATE TABLE rollup_hourly (
    metric  text NOT NULL,
    hour    timestamptz NOT NULL,
    key     text NOT NULL DEFAULT '',
    value   bigint NOT NULL,
    PRIMARY KEY (metric, hour, key)
);

CREATE TABLE rollup_daily (
    metric  text NOT NULL,
    day     date NOT NULL,
    key     text NOT NULL DEFAULT '',
    value   bigint NOT NULL,
    PRIMARY KEY (metric, day, key)
);

CREATE TABLE rollup_dirty (
    id      bigserial PRIMARY KEY,
    metric  text NOT NULL,
    hour    timestamptz NOT NULL,
    iin     text  -- new cases only: whose positives to look at again
);

CREATE TABLE rollup_state (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    timezone      text NOT NULL,
    refreshed_at  timestamptz NOT NULL
);

-- Indexes the recomputation of one hour needs. (A BRIN index on visits would be cheaper
-- to keep, but it finds nothing in pages no vacuum has summarised yet: after a bulk load
-- the job's hour took seconds instead of milliseconds.)
CREATE INDEX visits_checked_in_at ON visits (checked_in_at);
CREATE INDEX pcr_results_result_at ON pcr_results (result_at);
CREATE INDEX registered_contacts_registered_at ON registered_contacts (registered_at);
CREATE INDEX quarantine_cases_created_at ON quarantine_cases (created_at);
CREATE INDEX quarantine_cases_closed_at ON quarantine_cases (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX quarantine_episodes_opened_at ON quarantine_episodes (opened_at);

CREATE FUNCTION rollup_mark_visits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT 'checkins', date_trunc('hour', checked_in_at, 'UTC') FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_visits AFTER INSERT ON visits
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_visits();

-- A positive result is a new case unless the person had one in the 90 days before; so a
-- new positive can also take the "new" away from that person's later positives. The mark
-- carries the IIN: the refresh, which runs after the transactions committed, recomputes
-- the hours of all that person's positives (two positives of one person arriving in two
-- concurrent transactions cannot see each other here). Marks live until the next run.
CREATE FUNCTION rollup_mark_pcr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour, iin)
    SELECT DISTINCT 'pcr_tests', date_trunc('hour', result_at, 'UTC'), NULL::text FROM new_rows
    UNION
    SELECT DISTINCT 'new_cases', date_trunc('hour', result_at, 'UTC'), iin
      FROM new_rows WHERE result = 'positive';
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_pcr AFTER INSERT ON pcr_results
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_pcr();

CREATE FUNCTION rollup_mark_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT 'contacts', date_trunc('hour', registered_at, 'UTC') FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_contacts AFTER INSERT ON registered_contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_contacts();

CREATE FUNCTION rollup_mark_case_opened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT 'quarantine_opened', date_trunc('hour', created_at, 'UTC') FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_case_opened AFTER INSERT ON quarantine_cases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_case_opened();

-- Cases are updated on every location fix; only the closing update marks anything, and
-- the WHEN clause keeps the others free.
CREATE FUNCTION rollup_mark_case_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT 'quarantine_closed', date_trunc('hour', t, 'UTC')
      FROM (VALUES (OLD.closed_at), (NEW.closed_at)) v (t) WHERE t IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_case_closed AFTER UPDATE OF closed_at ON quarantine_cases
    FOR EACH ROW WHEN (OLD.closed_at IS DISTINCT FROM NEW.closed_at)
    EXECUTE FUNCTION rollup_mark_case_closed();

CREATE FUNCTION rollup_mark_violations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT 'violations', date_trunc('hour', opened_at, 'UTC') FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_violations AFTER INSERT ON quarantine_episodes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_violations();

CREATE FUNCTION rollup_mark_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT m.metric, date_trunc('hour', n.at, 'UTC')
      FROM new_rows n CROSS JOIN (VALUES ('calls_topic'), ('calls_district'), ('calls_outcome')) m (metric);
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_calls AFTER INSERT ON hotline_calls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_calls();

CREATE FUNCTION rollup_mark_passings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT 'passings', date_trunc('hour', at, 'UTC') FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_passings AFTER INSERT ON passings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_passings();
