-- `citybots demo-data` also fills the pages a new deployment shows empty (checkpoints,
-- permits, hotline, indicators) and gives the situation centre a demo history. Those rows
-- carry a demo_key too (NULL for real data), so a second load adds nothing and
-- `citybots demo-data --remove` takes exactly them away. Demo indicators are the ones
-- entered_by 'demo-data'.

ALTER TABLE permits ADD COLUMN demo_key text UNIQUE;
ALTER TABLE checkpoints ADD COLUMN demo_key text UNIQUE;
ALTER TABLE passings ADD COLUMN demo_key text UNIQUE;
ALTER TABLE officers ADD COLUMN demo_key text UNIQUE;
ALTER TABLE hotline_calls ADD COLUMN demo_key text UNIQUE;
ALTER TABLE hotline_unanswered ADD COLUMN demo_key text UNIQUE;
ALTER TABLE panel_users ADD COLUMN demo_key text UNIQUE;
