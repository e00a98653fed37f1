-- Zones change over time (a quarantine zone is drawn, widened, lifted): each import of a
-- zone is a new version with a validity period, so that a passing is judged against the
-- zone that was in force when it happened. Versions of one zone never overlap.

ALTER TABLE zones ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE zones ADD COLUMN valid_from timestamptz;
ALTER TABLE zones ADD COLUMN valid_until timestamptz;
ALTER TABLE zones ADD COLUMN source text;
UPDATE zones SET valid_from = created_at;
ALTER TABLE zones ALTER COLUMN valid_from SET NOT NULL;
ALTER TABLE zones ALTER COLUMN valid_from SET DEFAULT now();
ALTER TABLE zones ADD CONSTRAINT zones_valid_period
    CHECK (valid_until IS NULL OR valid_until > valid_from);
ALTER TABLE zones ADD CONSTRAINT zones_versions_do_not_overlap EXCLUDE USING gist
    (kind WITH =, name WITH =, tstzrange(valid_from, valid_until) WITH &&);
CREATE INDEX zones_in_force ON zones USING gist (tstzrange(valid_from, valid_until));
