-- The language of a person's Telegram app, so that messages sent later (notices from
-- the outbox) speak it too, not only replies to what they just wrote.
ALTER TABLE tg_users ADD COLUMN telegram_language text
    CHECK (telegram_language IN ('ru', 'kk', 'en'));
