-- City news: editors (the panel's communications role) write an item in ru, kk and en and
-- publish it to the city's Telegram channel and to the citizen bot's subscribers who
-- opted in (off by default, one tap to stop), through the outbox at Telegram's rates.
-- An urgent notice may go to one district's subscribers only.

ALTER TABLE panel_users DROP CONSTRAINT panel_users_role_check;
ALTER TABLE panel_users ADD CONSTRAINT panel_users_role_check CHECK (role IN
    ('admin', 'analyst', 'epidemiologist', 'permits_officer', 'registry_officer',
     'operations', 'communications'));

CREATE TABLE news_items (
    id            bigserial PRIMARY KEY,
    text_ru       text NOT NULL CHECK (length(text_ru) BETWEEN 1 AND 1200),
    text_kk       text NOT NULL CHECK (length(text_kk) BETWEEN 1 AND 1200),
    text_en       text NOT NULL CHECK (length(text_en) BETWEEN 1 AND 1200),
    district      text,  -- an urgent notice to this district's subscribers only
    urgent        boolean NOT NULL DEFAULT false,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    published_by  text,
    to_channel    boolean NOT NULL DEFAULT false,
    recipients    integer NOT NULL DEFAULT 0,  -- subscribers it was queued for
    CHECK (NOT urgent OR district IS NOT NULL)
);

-- A citizen bot chat that asked for the news; deleted when it stops them (or the bot is
-- blocked: see services/retention.py). The district is the person's choice, for urgent
-- notices; nothing else about them is kept.
CREATE TABLE news_subscribers (
    chat_id        bigint PRIMARY KEY,
    district       text,
    subscribed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX news_subscribers_district ON news_subscribers (district);

-- Which outbox messages carry which item: its send's progress.
ALTER TABLE outbox ADD COLUMN news_id bigint;
CREATE INDEX outbox_news ON outbox (news_id) WHERE news_id IS NOT NULL;
