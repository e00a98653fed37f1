-- Two partial indexes cover the open stays: visits_one_open_stay by person and
-- visits_open_by_venue by venue. A question by person ("is this person inside?", the
-- check-in function and check-out) or by venue ("how many are inside?") satisfies both
-- predicates, so with statistics gathered while few stays were open (an ANALYZE early in
-- the morning; autovacuum repeats it only after a tenth of the table has changed) the
-- planner found the other index just as cheap, and then read every open stay in the
-- city, filtered, on every scan. Each predicate now names its own key column (`IS NOT
-- NULL`, true of every row: both columns are NOT NULL), which only a question about that
-- column implies, so each question can use only its own index.
DROP INDEX visits_open_by_venue;
CREATE INDEX visits_open_by_venue ON visits (venue_id, checked_in_at)
    WHERE admitted AND checked_out_at IS NULL AND venue_id IS NOT NULL;
DROP INDEX visits_one_open_stay;
CREATE UNIQUE INDEX visits_one_open_stay ON visits (iin)
    WHERE admitted AND checked_out_at IS NULL AND iin IS NOT NULL;
