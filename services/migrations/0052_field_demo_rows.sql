-- The demo city's brigades and ambulance calls are marked like its other rows, so that a
-- second `citybots demo-data` adds nothing and `--remove` takes exactly them (a brigade's
-- tasks and tracks go with it).
ALTER TABLE brigades ADD COLUMN demo_key text UNIQUE;
ALTER TABLE ambulance_calls ADD COLUMN demo_key text UNIQUE;
