-- A venue sets its own auto-checkout time in the staff bot (services/venues.py), from
-- 15 minutes to 24 hours. A value outside that could only have been written by hand; it
-- is brought to the nearest bound, so the check holds for every row.
UPDATE venues SET auto_checkout_minutes = LEAST(GREATEST(auto_checkout_minutes, 15), 1440)
 WHERE auto_checkout_minutes NOT BETWEEN 15 AND 1440;
ALTER TABLE venues ADD CONSTRAINT venues_auto_checkout_bounds
    CHECK (auto_checkout_minutes BETWEEN 15 AND 1440);
