-- Reads that grow with the number of connections and their history: a run's results (every
-- run the dashboard and a connection's health page show), a connection's heartbeats since a
-- time (an issue's page, its diagnostic report) and each connection's latest results.
CREATE INDEX scan_results_by_run ON scan_results (run_id, id);
CREATE INDEX scan_results_by_connection_id ON scan_results (connection_id, id);
CREATE INDEX heartbeats_by_connection ON heartbeats (connection_id, at);
