-- A consumer id names one connection: the provider's inbound calls are matched to their
-- connection (and its secret) by it. Connections not yet registered have none (NULLs may repeat).
-- `connections.secret` is now stored sealed (`v1:<key id>:…`, see app/src/server/sealed.rs); older
-- plain base64 values are sealed by the app at start-up.
CREATE UNIQUE INDEX connections_consumer_id_unique ON connections (consumer_id);
