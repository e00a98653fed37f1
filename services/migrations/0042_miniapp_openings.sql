-- The Mini App's ledger: each opening of the citizen bot's Mini App (one initData signed
-- by Telegram, named by its hash) takes effect once, however often the page posts it (a
-- reload, a retry on a bad network, two taps). The answer is kept with it, so a repeat
-- gets the same pass without storing a second visit. No IIN, no name: the outcome only.
-- Rows live a little longer than an initData is accepted (MINIAPP_INIT_DATA_MAX_AGE_SECONDS)
-- and are purged with the update ledger.
CREATE TABLE miniapp_openings (
    init_hash   text PRIMARY KEY CHECK (init_hash ~ '^[0-9a-f]{64}$'),
    tg_user_id  bigint NOT NULL,
    answer      jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX miniapp_openings_opened_at ON miniapp_openings (opened_at);
