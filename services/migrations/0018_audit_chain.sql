-- The audit log is append-only and hash-chained.
--
-- Append-only: triggers refuse every DELETE and TRUNCATE, and every UPDATE except the one
-- that chains a row (sets chain_seq, prev_hash and hash of a row that has none, leaving
-- the rest as it was); a new row cannot come pre-chained. Triggers bind the table's owner
-- too; an owner or superuser can switch them off, which the chain then reveals. (Where
-- the application connects as a role that does not own the table, it cannot switch them
-- off at all.)
--
-- Hash-chained: a job (services/audit.py, every 30 seconds) takes the rows not yet
-- chained in id order, and gives each the next chain_seq and
-- hash = HMAC-SHA256(key, prev_hash || the row's canonical form) with a key kept outside
-- the database, remembering the last in audit_chain_head and logging it. `citybots audit
-- verify` walks the chain: an edited row no longer matches its hash, a deleted one leaves
-- a gap, rows cut off the end no longer hold a head logged earlier (--head).

ALTER TABLE audit_log
    ADD COLUMN chain_seq  bigint UNIQUE,
    ADD COLUMN prev_hash  bytea,
    ADD COLUMN hash       bytea;
CREATE INDEX audit_log_unchained ON audit_log (id) WHERE chain_seq IS NULL;

CREATE TABLE audit_chain_head (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    chain_seq  bigint NOT NULL,
    hash       bytea NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL
       AND NEW.hash IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.subject, NEW.details)
           IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.subject, OLD.details)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION audit_log_unchained() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.chain_seq := NULL;
    NEW.prev_hash := NULL;
    NEW.hash := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_unchained BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_unchained();
-- The chain starts from 32 zero bytes; the head row always exists, so chaining runs
-- one at a time behind its row lock.
INSERT INTO audit_chain_head (chain_seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
