-- Visits partitioned by day (UTC) of check-in, as location_fixes is (0045): the retention
-- job drops a whole day's table instead of deleting half a million rows a day one by one
-- (deletes leave the table and its indexes as large as its busiest four weeks).
--
-- A unique index on a partitioned table must hold the partition key, so "one open stay per
-- person" (the unique index visits_one_open_stay) moves to a table of its own: open_stays,
-- one row per person checked in somewhere now (the stay's id, venue and check-in time),
-- its primary key the person. Row triggers on visits keep it in the same transaction as
-- the visit row, whoever writes it: citybots_check_in, the check-outs of
-- services/visits.py (scan, staff, auto, closing), the demo reset and the benches. A
-- second open stay for a person fails on open_stays_pkey as it failed on the old index.
-- "Is this person inside, where?" and "how many are inside this venue?" read open_stays
-- (a few thousand rows at any time) instead of every day's partition.

-- Makes the day partitions of `parent` (partitioned by range of `time_column`) from
-- first_day to last_day that do not exist yet, named <parent>_YYYYMMDD; rows of such a day
-- waiting in the DEFAULT partition <parent>_default move into the new one (deleted and
-- inserted again, so the tables' triggers see them go and come back). Returns how many it
-- made. Called here and by the retention job on every run (a few days ahead).
CREATE FUNCTION day_partitions_add(parent text, time_column text, first_day date,
                                   last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date := first_day;
    made integer := 0;
    part text;
    low timestamptz;
    high timestamptz;
    stored_columns text;
    waiting boolean;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO stored_columns
      FROM pg_attribute
     WHERE attrelid = parent::regclass AND attnum > 0 AND NOT attisdropped
       AND attgenerated = '';
    WHILE day <= last_day LOOP
        part := parent || '_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            low := day::timestamp AT TIME ZONE 'UTC';
            high := (day + 1)::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                           parent || '_default', time_column, time_column)
                INTO waiting USING low, high;
            IF waiting THEN
                EXECUTE format('CREATE TEMP TABLE day_partitions_moving AS'
                               ' SELECT %s FROM %I WHERE %I >= %L AND %I < %L',
                               stored_columns, parent || '_default', time_column, low,
                               time_column, high);
                EXECUTE format('DELETE FROM %I WHERE %I >= $1 AND %I < $2',
                               parent || '_default', time_column, time_column)
                    USING low, high;
            END IF;
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, parent, low, high);
            IF waiting THEN
                EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM day_partitions_moving',
                               parent, stored_columns, stored_columns);
                DROP TABLE day_partitions_moving;
            END IF;
            made := made + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN made;
END
$$;

ALTER TABLE exposure_notices DROP CONSTRAINT exposure_notices_visit_id_fkey;
ALTER TABLE visits RENAME TO visits_unpartitioned;
ALTER TABLE visits_unpartitioned RENAME CONSTRAINT visits_pkey TO visits_unpartitioned_pkey;
DROP INDEX visits_one_open_stay, visits_overlap, visits_by_person, visits_open_by_venue,
    visits_by_venue_time, visits_checked_in_at;
ALTER SEQUENCE visits_id_seq OWNED BY NONE;

CREATE TABLE visits (
    id                bigint NOT NULL DEFAULT nextval('visits_id_seq'),
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
    CHECK (checked_out_at IS NULL OR checked_out_at >= checked_in_at),
    PRIMARY KEY (id, checked_in_at)
) PARTITION BY RANGE (checked_in_at);
ALTER SEQUENCE visits_id_seq OWNED BY visits.id;
CREATE TABLE visits_default PARTITION OF visits DEFAULT;
-- The indexes of 0003, 0017 and 0024, on each day's partition; the two partial indexes of
-- open stays are no longer unique (open_stays is) and are tiny in every day but today's.
CREATE INDEX visits_overlap ON visits USING gist (venue_id, stay) WHERE admitted;
CREATE INDEX visits_by_person ON visits (iin, checked_in_at DESC);
CREATE INDEX visits_by_venue_time ON visits (venue_id, checked_in_at);
CREATE INDEX visits_checked_in_at ON visits (checked_in_at);
CREATE INDEX visits_open_by_venue ON visits (venue_id, checked_in_at)
    WHERE admitted AND checked_out_at IS NULL AND venue_id IS NOT NULL;
CREATE INDEX visits_open_by_person ON visits (iin)
    WHERE admitted AND checked_out_at IS NULL AND iin IS NOT NULL;

CREATE TABLE open_stays (
    iin            text PRIMARY KEY,
    visit_id       bigint NOT NULL,
    venue_id       bigint NOT NULL,
    checked_in_at  timestamptz NOT NULL
);
CREATE INDEX open_stays_by_venue ON open_stays (venue_id);

CREATE FUNCTION visits_keep_open_stays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.admitted AND OLD.checked_out_at IS NULL THEN
            DELETE FROM open_stays WHERE iin = OLD.iin AND visit_id = OLD.id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.admitted AND NEW.checked_out_at IS NULL THEN
            INSERT INTO open_stays (iin, visit_id, venue_id, checked_in_at)
            VALUES (NEW.iin, NEW.id, NEW.venue_id, NEW.checked_in_at);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER visits_open_stay_opened AFTER INSERT ON visits FOR EACH ROW
    WHEN (NEW.admitted AND NEW.checked_out_at IS NULL)
    EXECUTE FUNCTION visits_keep_open_stays();
CREATE TRIGGER visits_open_stay_changed AFTER UPDATE ON visits FOR EACH ROW
    WHEN ((OLD.admitted AND OLD.checked_out_at IS NULL)
          IS DISTINCT FROM (NEW.admitted AND NEW.checked_out_at IS NULL)
          OR (OLD.admitted AND OLD.checked_out_at IS NULL
              AND (OLD.iin, OLD.venue_id, OLD.id, OLD.checked_in_at)
                  IS DISTINCT FROM (NEW.iin, NEW.venue_id, NEW.id, NEW.checked_in_at)))
    EXECUTE FUNCTION visits_keep_open_stays();
CREATE TRIGGER visits_open_stay_deleted AFTER DELETE ON visits FOR EACH ROW
    WHEN (OLD.admitted AND OLD.checked_out_at IS NULL)
    EXECUTE FUNCTION visits_keep_open_stays();

-- The days of the visits kept so far (a month back at most: older ones go to the DEFAULT
-- partition for the retention job) and the next few; then the rows themselves, whose open
-- stays the trigger writes to open_stays.
SELECT day_partitions_add('visits', 'checked_in_at',
    GREATEST(LEAST((SELECT min(checked_in_at) AT TIME ZONE 'UTC' FROM visits_unpartitioned)::date,
                   (now() AT TIME ZONE 'UTC')::date),
             (now() AT TIME ZONE 'UTC')::date - 30),
    (now() AT TIME ZONE 'UTC')::date + 3);
INSERT INTO visits (id, venue_id, entrance_id, iin, tg_user_id, via, staff_tg_user_id, status,
                    admitted, checked_in_at, checked_out_at, checkout_kind)
SELECT id, venue_id, entrance_id, iin, tg_user_id, via, staff_tg_user_id, status,
       admitted, checked_in_at, checked_out_at, checkout_kind
  FROM visits_unpartitioned;
DROP TABLE visits_unpartitioned;

-- The check-ins' marks for the situation centre's roll-ups (0017), made after the copy:
-- the rows copied were counted already.
CREATE TRIGGER rollup_visits AFTER INSERT ON visits
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_visits();

-- The check-in function as in 0029, reading the person's open stay and the venue's count
-- from open_stays, and closing a stay elsewhere by its id and check-in time (so in its
-- day's partition only). Its writes to visits keep open_stays through the triggers.
-- The live definition of citybots_check_in is in functions/citybots_check_in.sql.
