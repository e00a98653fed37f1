-- Fix sampling: while a patient is at home only one fix per sample period is stored (the
-- rest only move the last-seen state), so the case remembers when it last stored one.
ALTER TABLE quarantine_cases ADD COLUMN last_kept_fix_at timestamptz;
UPDATE quarantine_cases c SET last_kept_fix_at = f.at
  FROM (SELECT case_id, max(fixed_at) AS at FROM location_fixes GROUP BY case_id) f
 WHERE f.case_id = c.id;
