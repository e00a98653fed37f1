-- Raw fixes partitioned by day (UTC) of the time Telegram stamped on them, so that the
-- retention job drops a whole day's table instead of deleting rows one by one (deletes
-- leave a table as large as ever and a BRIN index whose ranges never narrow). Fixes at
-- a time no day's partition covers go to the DEFAULT partition, which retention deletes
-- from row by row. The primary key must hold the partition key: it already does.
ALTER TABLE location_fixes RENAME TO location_fixes_unpartitioned;
ALTER TABLE location_fixes_unpartitioned
    RENAME CONSTRAINT location_fixes_pkey TO location_fixes_unpartitioned_pkey;
ALTER TABLE location_fixes_unpartitioned
    RENAME CONSTRAINT location_fixes_case_id_fkey TO location_fixes_unpartitioned_case_id_fkey;
DROP INDEX location_fixes_age;

CREATE TABLE location_fixes (
    case_id     bigint NOT NULL REFERENCES quarantine_cases (id) ON DELETE CASCADE,
    message_id  integer NOT NULL,
    fixed_at    timestamptz NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    accuracy    real,
    verdict     text NOT NULL,
    distance_m  real,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, message_id, fixed_at, latitude, longitude)
) PARTITION BY RANGE (fixed_at);
CREATE TABLE location_fixes_default PARTITION OF location_fixes DEFAULT;

-- Makes the day partitions from first_day to last_day that do not exist yet; rows of such
-- a day already in the DEFAULT partition move into the new one. Returns how many it made.
-- Called here and by the retention job on every run (a few days ahead).
CREATE FUNCTION location_fixes_add_days(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date := first_day;
    made integer := 0;
    part text;
    low timestamptz;
    high timestamptz;
BEGIN
    WHILE day <= last_day LOOP
        part := 'location_fixes_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            low := day::timestamp AT TIME ZONE 'UTC';
            high := (day + 1)::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('CREATE TABLE %I (LIKE location_fixes INCLUDING DEFAULTS)', part);
            EXECUTE format(
                'WITH moved AS (DELETE FROM location_fixes_default'
                ' WHERE fixed_at >= $1 AND fixed_at < $2 RETURNING *)'
                ' INSERT INTO %I SELECT * FROM moved', part)
                USING low, high;
            EXECUTE format(
                'ALTER TABLE location_fixes ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                part, low, high);
            made := made + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN made;
END
$$;

-- The days of the rows kept so far (a month back at most: older ones go to the DEFAULT
-- partition for the retention job) and the next few; then the rows themselves.
SELECT location_fixes_add_days(
    GREATEST(LEAST((SELECT min(fixed_at) AT TIME ZONE 'UTC' FROM location_fixes_unpartitioned)::date,
                   (now() AT TIME ZONE 'UTC')::date),
             (now() AT TIME ZONE 'UTC')::date - 30),
    (now() AT TIME ZONE 'UTC')::date + 3);
INSERT INTO location_fixes SELECT * FROM location_fixes_unpartitioned;
DROP TABLE location_fixes_unpartitioned;
