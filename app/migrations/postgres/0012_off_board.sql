-- Off-boarded connections keep their record and history but give up their company and provider
-- URL, so those are unique among live connections only.
ALTER TABLE connections DROP CONSTRAINT connections_company_id_key;
ALTER TABLE connections DROP CONSTRAINT connections_url_key;
CREATE UNIQUE INDEX connections_live_company ON connections (company_id) WHERE state <> 'off_boarded';
CREATE UNIQUE INDEX connections_live_url ON connections (url) WHERE state <> 'off_boarded';
