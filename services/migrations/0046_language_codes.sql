-- A person's language is checked for its shape (a language code), no longer against a
-- list of the languages we speak: that list is services/languages.py, which the code
-- checks a value against before storing it, so adding a language needs no migration.
-- A stored language we no longer speak is read as "not chosen" (flows pick another).
CREATE DOMAIN language_code AS text CHECK (VALUE ~ '^[a-z]{2,3}$');

ALTER TABLE tg_users DROP CONSTRAINT tg_users_language_check;
ALTER TABLE tg_users DROP CONSTRAINT tg_users_telegram_language_check;
ALTER TABLE tg_users ALTER COLUMN language TYPE language_code;
ALTER TABLE tg_users ALTER COLUMN telegram_language TYPE language_code;
