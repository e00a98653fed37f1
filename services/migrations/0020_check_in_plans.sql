-- The check-in function's queries are planned once per connection and the plans kept
-- until the table's statistics change. Planned while `visits` was empty or small (a new
-- deployment's first minute, before autovacuum's ANALYZE), they were sequential scans
-- or bitmap scans of a whole index, and stayed so while the table grew: a bitmap scan
-- never marks the index entries of closed stays dead, so every check-in read every stay
-- since the plan was made (measured: PostgreSQL's CPU per check-in rose from 0.3 ms to
-- 1.2 ms over 30,000 check-ins). Each query here is a point look-up or a small count
-- with its index, so the function plans neither.
ALTER FUNCTION citybots_check_in(bigint, bigint, text, bigint, text, bigint, text, boolean,
                                 integer, boolean)
    SET enable_seqscan = off
    SET enable_bitmapscan = off;
