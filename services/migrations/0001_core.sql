-- Core tables every bot uses.

-- A Telegram account's chosen language. No names or phone numbers are kept here.
CREATE TABLE tg_users (
    tg_user_id  bigint PRIMARY KEY,
    language    text CHECK (language IN ('ru', 'kk', 'en')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The ledger of incoming updates, so that an update delivered twice (a webhook
-- retried, two workers, a restart before the offset was confirmed) is handled once.
-- A claim is a lease: if the worker handling it dies, the lease runs out and a
-- redelivery of the same update is handled again.
CREATE TABLE processed_updates (
    bot_id         bigint      NOT NULL,
    update_id      bigint      NOT NULL,
    claimed_until  timestamptz NOT NULL,
    done_at        timestamptz,
    attempts       integer     NOT NULL DEFAULT 1,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX processed_updates_received_at ON processed_updates (received_at);
