-- A check-in in one round trip: the rules stay in services/visits.py (which decides
-- admission from the status colour it passes in); this function only makes the
-- steps atomic and serialised per person, without six round trips per scan.
-- The live definition of citybots_check_in is in functions/citybots_check_in.sql.
SELECT 1;  -- nothing else is left to do, and the runner cannot execute comments alone
