-- Applying for permits: an organisation's head proves who they are (BIN + the head's
-- phone on the tax register) once per Telegram account, then applies for people and
-- vehicles; each application's permits are approved at once when every rule holds and
-- otherwise wait for a permits officer, with the rules they failed.

CREATE TABLE org_heads (
    tg_user_id   bigint PRIMARY KEY,
    bin          text NOT NULL REFERENCES organisations (bin),
    verified_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE permit_applications (
    id           bigserial PRIMARY KEY,
    bin          text NOT NULL REFERENCES organisations (bin),
    applicant    text NOT NULL,
    register     text NOT NULL CHECK (register IN ('city', 'roadblock')),
    purpose      text NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    source       text NOT NULL CHECK (source IN ('bot', 'csv', 'panel')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until > valid_from)
);

ALTER TABLE permits ADD COLUMN application_id bigint REFERENCES permit_applications (id);
ALTER TABLE permits ADD COLUMN failed_rules text[] NOT NULL DEFAULT '{}';
CREATE INDEX permits_pending ON permits (created_at) WHERE state = 'pending';
CREATE INDEX permits_application ON permits (application_id);

-- One rule for "may this organisation hold permits": the tax register's flag, and its
-- activity among the allowed ones (an empty list allows every activity).
CREATE VIEW permit_organisations AS
SELECT o.*,
       o.allowed AND (NOT EXISTS (SELECT 1 FROM allowed_activities)
                      OR o.activity_code IN (SELECT code FROM allowed_activities)) AS permitted
  FROM organisations o;
