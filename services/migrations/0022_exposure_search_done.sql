-- A positive result's exposure search is marked done by the statement that records its
-- notices. A result stored but never searched (its worker died, or Redis failed, between
-- the import's commit and the search; a retried push then finds it a duplicate) is
-- found by the exposure catch-up job.
ALTER TABLE pcr_results ADD COLUMN exposure_done_at timestamptz;
UPDATE pcr_results SET exposure_done_at = created_at WHERE result = 'positive';
CREATE INDEX pcr_results_exposure_pending ON pcr_results (id)
    WHERE result = 'positive' AND exposure_done_at IS NULL;
