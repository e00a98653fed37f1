-- Coming back home is judged as strictly as leaving (geofence/home.py, HomeWatch): while
-- a patient is away, two fixes in a row within the home radius end the episode, so the
-- run of such fixes so far is kept with the case, next to the run of outside fixes.
ALTER TABLE quarantine_cases ADD COLUMN inside_streak smallint NOT NULL DEFAULT 0;
