-- After "Rotate credentials" the old secret, sealed like the current one, is still accepted on
-- the inbound endpoint until its time (then retired by the sweep).
ALTER TABLE connections ADD COLUMN previous_secret TEXT;
ALTER TABLE connections ADD COLUMN previous_secret_until TEXT;
