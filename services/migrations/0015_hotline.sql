-- The hotline: questions the bot could not answer (text with personal numbers scrubbed,
-- language, time; never who asked), for the FAQ's next edition.

CREATE TABLE hotline_unanswered (
    id          bigserial PRIMARY KEY,
    text        text NOT NULL,
    language    text NOT NULL,
    top_intent  text,
    confidence  real,
    asked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotline_unanswered_asked ON hotline_unanswered (asked_at);

-- Hotline agents join by an invite like officers do (one invite mechanism, one more role).
ALTER TABLE officers DROP CONSTRAINT officers_role_check;
ALTER TABLE officers ADD CONSTRAINT officers_role_check
    CHECK (role IN ('police', 'checkpoint', 'agent'));
ALTER TABLE officer_invites DROP CONSTRAINT officer_invites_role_check;
ALTER TABLE officer_invites ADD CONSTRAINT officer_invites_role_check
    CHECK (role IN ('police', 'checkpoint', 'agent'));
ALTER TABLE officers ADD COLUMN on_shift boolean NOT NULL DEFAULT false;

-- A citizen asking for a person: a ticket that waits until an agent takes it; then the
-- conversation is relayed both ways until the agent closes it.
CREATE TABLE hotline_tickets (
    id            bigserial PRIMARY KEY,
    citizen_chat  bigint NOT NULL,
    language      text NOT NULL,
    question      text NOT NULL DEFAULT '',
    state         text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'taken', 'closed')),
    agent_chat    bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    taken_at      timestamptz,
    closed_at     timestamptz
);
CREATE UNIQUE INDEX hotline_tickets_one_open ON hotline_tickets (citizen_chat)
    WHERE state <> 'closed';
CREATE INDEX hotline_tickets_agent ON hotline_tickets (agent_chat) WHERE state = 'taken';

-- Calls an agent walked through a script: topic, outcome, district and time (never the
-- caller), for the situation centre's calls by district and hour.
CREATE TABLE hotline_calls (
    id        bigserial PRIMARY KEY,
    agent     bigint NOT NULL,
    topic     text NOT NULL,
    outcome   text NOT NULL CHECK (outcome IN ('answered', 'callback', 'referred', 'ambulance')),
    district  text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotline_calls_at ON hotline_calls (at);
