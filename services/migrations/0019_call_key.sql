-- A call is logged once however many times its last button is pressed: the key names the
-- agent's chat and the message whose button logged it.
ALTER TABLE hotline_calls ADD COLUMN call_key text;
CREATE UNIQUE INDEX hotline_calls_key ON hotline_calls (call_key) WHERE call_key IS NOT NULL;
