-- City news is queued for its subscribers by a background job in batches (services/news.py
-- queue_pending), not in the publishing request: a send to two million subscribers is
-- never one insert of two million rows. The item records whom it goes to when published
-- and how far the queueing has gone (the subscribers are walked in chat id order).

ALTER TABLE news_items
    ADD COLUMN to_subscribers  boolean NOT NULL DEFAULT false,
    ADD COLUMN audience        integer NOT NULL DEFAULT 0,  -- subscribers when published
    ADD COLUMN queued_through  bigint,       -- the last subscriber's chat id queued so far
    ADD COLUMN queued_at       timestamptz;  -- every subscriber queued (NULL: still queueing)

-- Items published before this were queued whole when published.
UPDATE news_items SET to_subscribers = recipients > 0, audience = recipients,
       queued_at = published_at
 WHERE published_at IS NOT NULL;

CREATE INDEX news_items_queueing ON news_items (id)
    WHERE published_at IS NOT NULL AND queued_at IS NULL;
