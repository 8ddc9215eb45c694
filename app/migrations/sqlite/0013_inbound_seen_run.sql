-- Which onboarding run the provider's verified "onboarded" call arrived in: completion turns
-- Inbound Up only on a call received in its own run, not on the provider's word.
ALTER TABLE connections ADD COLUMN inbound_seen_run BIGINT;
