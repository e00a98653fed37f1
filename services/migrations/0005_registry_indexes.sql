-- The unique key (iin, sampled_at, laboratory) already serves look-ups by IIN; a second
-- index on iin only slowed every import down.
DROP INDEX IF EXISTS pcr_results_iin;
