-- Verified venues: a venue's staff may look anyone up by IIN (check-in and check-out by
-- IIN) only once the venue is verified, by its owner proving to be the head of the
-- organisation whose BIN it was registered under (the head's phone on the organisations'
-- register, shared with the contact button, as for permit applications), or by a
-- registry officer's approval on the panel (services/venues.py). QR codes and citizens'
-- own check-ins work either way.
--
-- Venues registered before this migration are unverified: nobody checked that their
-- owners act for the BIN they typed. Their owners verify them from the venue's menu, or
-- a registry officer approves them.
--
-- verified_owner is the owner's Telegram account at verification: the staff who may look
-- people up are that account and the staff it invited.
ALTER TABLE venues
    ADD COLUMN verified_at     timestamptz,
    ADD COLUMN verified_how    text CHECK (verified_how IN ('head', 'officer')),
    ADD COLUMN verified_by     text,
    ADD COLUMN verified_owner  bigint,
    ADD CONSTRAINT venues_verified_whole CHECK (
        (verified_at IS NULL AND verified_how IS NULL AND verified_by IS NULL
         AND verified_owner IS NULL)
        OR (verified_at IS NOT NULL AND verified_how IS NOT NULL AND verified_by IS NOT NULL
            AND verified_owner IS NOT NULL)
    );

-- Whose invite a member of the staff joined by, at every look-up by IIN.
CREATE INDEX staff_invites_used ON staff_invites (venue_id, used_by) WHERE used_by IS NOT NULL;

-- The check-in function as in 0020, with two changes. A check-in by staff (by IIN) never
-- closes the person's open stay at another venue: it answers 'elsewhere' and stores no
-- visit (the look-up is still written to the audit log, marked so); a QR check-in there
-- still closes the other stay first ('moved'), as the person is at the door themselves.
-- And a staff look-up of someone already inside is written to the audit log too (it
-- showed their colour without a trace).
-- The live definition of citybots_check_in is in functions/citybots_check_in.sql.
