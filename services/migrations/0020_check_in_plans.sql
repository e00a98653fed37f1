-- The check-in function's queries are planned once per connection and the plans kept.
-- Planned while `visits` was empty or small (a new deployment, or the first minute
-- before autovacuum's ANALYZE), they were sequential scans, and stayed so while the
-- table grew: every scan then read the whole table three times (open stay, people
-- inside, closing the stay; measured 1.2-2.3 ms of PostgreSQL CPU per check-in after
-- 10,000-20,000 visits, 0.43 ms with index scans). Each of those queries has its
-- index, so the function never plans a sequential scan of its own.
ALTER FUNCTION citybots_check_in(bigint, bigint, text, bigint, text, bigint, text, boolean,
                                 integer, boolean)
    SET enable_seqscan = off;
