-- Registry writes note the IINs whose status they change, in their own transaction; the
-- note is dropped once Redis has made those cached statuses stale. A note left behind
-- (Redis failed, or the worker died, between the commit and the invalidation) is
-- invalidated by the status catch-up job, so a cached green cannot outlive a new
-- positive result for its hour.
CREATE TABLE status_changes (
    id          bigserial PRIMARY KEY,
    iins        text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
