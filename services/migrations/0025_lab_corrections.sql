-- Laboratory corrections, withdrawals, one exposure notice per stay, and the person told
-- of their own results and colour changes.

-- A result for a sample already stored with another outcome supersedes the stored one:
-- both are kept, the old one marked with when and by which result. A result entered in
-- error is withdrawn (it stops counting) with who and why. Only one result per sample is
-- current (not superseded); the unique key was on every row, so a correction could not
-- be stored at all.
ALTER TABLE pcr_results
    ADD COLUMN superseded_at     timestamptz,
    ADD COLUMN superseded_by     bigint REFERENCES pcr_results (id) ON DELETE SET NULL,
    ADD COLUMN withdrawn_at      timestamptz,
    ADD COLUMN withdrawn_by      text,
    ADD COLUMN withdrawn_reason  text,
    ADD CHECK ((withdrawn_at IS NULL) = (withdrawn_by IS NULL));
ALTER TABLE pcr_results DROP CONSTRAINT pcr_results_iin_sampled_at_laboratory_key;
CREATE UNIQUE INDEX pcr_results_current_sample ON pcr_results (iin, sampled_at, laboratory)
    WHERE superseded_at IS NULL;
-- The history of a sample (few rows: corrections are rare).
CREATE INDEX pcr_results_superseded ON pcr_results (iin, sampled_at, laboratory)
    WHERE superseded_at IS NOT NULL;
CREATE INDEX pcr_results_superseded_by ON pcr_results (superseded_by)
    WHERE superseded_by IS NOT NULL;

-- An upheld dispute can mark a contact registration as entered in error.
ALTER TABLE registered_contacts
    ADD COLUMN withdrawn_at      timestamptz,
    ADD COLUMN withdrawn_by      text,
    ADD COLUMN withdrawn_reason  text;

-- A notice whose result stopped counting (corrected to negative, or withdrawn) is
-- retracted; the person, if already told, is told the result behind it was corrected.
-- The person is told once per exposed stay (the outbox key names the stay), whatever
-- the number of results, corrections or re-runs of the search.
ALTER TABLE exposure_notices ADD COLUMN retracted_at timestamptz;
CREATE INDEX exposure_notices_visit ON exposure_notices (visit_id);

-- What a linked citizen was last told of their own status: the colour (and until when),
-- and the newest result of theirs they were told about. status_due_at is when to look
-- again: now, for an account whose IIN a registry write touched, and the time the colour
-- changes by itself.
ALTER TABLE citizens
    ADD COLUMN told_colour     text,
    ADD COLUMN told_until      timestamptz,
    ADD COLUMN told_result_id  bigint,
    ADD COLUMN status_due_at   timestamptz DEFAULT now();
UPDATE citizens SET status_due_at = now();
CREATE INDEX citizens_status_due ON citizens (status_due_at) WHERE status_due_at IS NOT NULL;

-- The IINs each registry write touched, written in the writer's transaction (one row per
-- chunk or action: cheap for an import). The status-notice job turns them into due
-- accounts a few seconds later, so that a change and its undoing in one import are told
-- as nothing.
CREATE TABLE status_notice_queue (
    id          bigserial PRIMARY KEY,
    iins        text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Roll-ups count current results only: a correction or a withdrawal recomputes its hours.
CREATE FUNCTION rollup_mark_pcr_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (metric, hour, iin)
    VALUES ('pcr_tests', date_trunc('hour', NEW.result_at, 'UTC'), NULL),
           ('new_cases', date_trunc('hour', NEW.result_at, 'UTC'), NEW.iin);
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_pcr_changed AFTER UPDATE OF superseded_at, withdrawn_at ON pcr_results
    FOR EACH ROW WHEN (OLD.superseded_at IS DISTINCT FROM NEW.superseded_at
                       OR OLD.withdrawn_at IS DISTINCT FROM NEW.withdrawn_at)
    EXECUTE FUNCTION rollup_mark_pcr_changed();
