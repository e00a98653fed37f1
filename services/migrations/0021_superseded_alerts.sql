-- A signal alert that a newer one replaces (close_kind 'superseded': an inaccurate fix
-- that became no signal at all) is one violation that changed, not a second: the roll-up
-- leaves superseded episodes out (services/rollups.py), so the hour it was opened in is
-- marked for recounting when an episode is superseded.
CREATE FUNCTION rollup_mark_superseded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour)
    VALUES ('violations', date_trunc('hour', NEW.opened_at, 'UTC'));
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_superseded AFTER UPDATE OF close_kind ON quarantine_episodes
    FOR EACH ROW WHEN (NEW.close_kind = 'superseded'
                       AND OLD.close_kind IS DISTINCT FROM NEW.close_kind)
    EXECUTE FUNCTION rollup_mark_superseded();
