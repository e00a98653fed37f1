-- The audit log is append-only: its triggers (0018) refuse every UPDATE, DELETE and
-- TRUNCATE. Rows are chained as they are inserted (0032), so no update is let through.
--
-- The live definition (first written by 0018, changed by 0032). The migration runner
-- applies this file after the migrations whenever its text changes.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
