-- The check-in in one round trip: the rules stay in services/visits.py (which decides
-- admission from the status colour it passes in); this function only makes the steps
-- atomic and serialised per person, without six round trips per scan.
--
-- The live definition (once written by 0006, 0020, 0029 and 0048, whose copies were
-- removed: REWRITTEN in services/migrations.py). The migration runner applies this file
-- after the migrations whenever its text changes; change it here, not in a new migration
-- (a change of arguments or result needs a migration that drops the old function first).
--
-- Its queries are planned once per connection and the plans kept: planned while `visits`
-- was small, they stayed sequential or bitmap scans as the table grew (0020), so each
-- query is a point look-up or a small count with its index and the function plans
-- neither. A venue that refuses entry when full is locked for the count and the insert,
-- so that its last place is taken once. A check-in by staff (by IIN) never closes the
-- person's open stay at another venue: it answers 'elsewhere' and stores no visit, the
-- look-up still written to the audit log (0029); a QR check-in closes the other stay
-- first ('moved'), as the person is at the door themselves. Since visits are partitioned
-- by day (0048) the person's open stay and the venue's count are read from open_stays,
-- and a stay elsewhere is closed by its id and check-in time (in its day's partition only);
-- its writes to visits keep open_stays through the triggers.
CREATE OR REPLACE FUNCTION citybots_check_in(
    p_venue_id bigint,
    p_entrance_id bigint,
    p_iin text,
    p_tg_user_id bigint,
    p_via text,
    p_staff_tg_user_id bigint,
    p_status text,
    p_may_enter boolean,
    p_capacity integer,
    p_refuse_when_full boolean
) RETURNS TABLE (outcome text, visit_id bigint, occupancy integer, moved_from text,
                 over_capacity boolean)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    open_id bigint;
    open_venue bigint;
    open_at timestamptz;
    inside integer;
    full_now boolean;
    admit boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_iin, 7));
    IF p_capacity IS NOT NULL AND p_refuse_when_full THEN
        -- One check-in at a time at a venue that refuses when full, so that two
        -- transactions cannot both take its last place (FK checks are not blocked).
        PERFORM 1 FROM venues WHERE id = p_venue_id FOR NO KEY UPDATE;
    END IF;
    SELECT o.visit_id, o.venue_id, o.checked_in_at INTO open_id, open_venue, open_at
      FROM open_stays o WHERE o.iin = p_iin;
    SELECT count(*) INTO inside FROM open_stays o WHERE o.venue_id = p_venue_id;
    IF open_venue = p_venue_id THEN
        IF p_via = 'staff' THEN
            INSERT INTO audit_log (actor, action, subject, details)
            VALUES ('staff:' || p_staff_tg_user_id, 'status.lookup', p_iin,
                    jsonb_build_object('venue_id', p_venue_id, 'colour', p_status));
        END IF;
        RETURN QUERY SELECT 'already_inside'::text, open_id, inside, NULL::text, false;
        RETURN;
    END IF;
    IF p_via = 'staff' AND open_id IS NOT NULL THEN
        INSERT INTO audit_log (actor, action, subject, details)
        VALUES ('staff:' || p_staff_tg_user_id, 'status.lookup', p_iin,
                jsonb_build_object('venue_id', p_venue_id, 'elsewhere', true));
        RETURN QUERY SELECT 'elsewhere'::text, NULL::bigint, inside, NULL::text, false;
        RETURN;
    END IF;
    full_now := p_capacity IS NOT NULL AND inside >= p_capacity;
    admit := p_may_enter AND NOT (full_now AND p_refuse_when_full);
    IF admit AND open_id IS NOT NULL THEN
        UPDATE visits SET checked_out_at = now(), checkout_kind = 'moved'
         WHERE id = open_id AND checked_in_at = open_at;
        SELECT v.name INTO moved_from FROM venues v WHERE v.id = open_venue;
    END IF;
    INSERT INTO visits (venue_id, entrance_id, iin, tg_user_id, via, staff_tg_user_id, status,
                        admitted, checked_out_at, checkout_kind)
    VALUES (p_venue_id, p_entrance_id, p_iin, p_tg_user_id, p_via, p_staff_tg_user_id,
            p_status, admit, CASE WHEN admit THEN NULL ELSE now() END,
            CASE WHEN admit THEN NULL ELSE 'refused' END)
    RETURNING id INTO visit_id;
    IF p_via = 'staff' THEN
        INSERT INTO audit_log (actor, action, subject, details)
        VALUES ('staff:' || p_staff_tg_user_id, 'status.lookup', p_iin,
                jsonb_build_object('venue_id', p_venue_id, 'colour', p_status));
    END IF;
    RETURN QUERY SELECT
        CASE WHEN NOT p_may_enter THEN 'refused' WHEN NOT admit THEN 'full' ELSE 'admitted' END,
        visit_id, inside + CASE WHEN admit THEN 1 ELSE 0 END, moved_from, full_now;
END;
$$;
