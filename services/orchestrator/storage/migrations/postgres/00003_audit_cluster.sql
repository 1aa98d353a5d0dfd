-- Two audits of one cluster never overlap, whichever replicas run them: a
-- claim skips a pending audit while another audit of its cluster is held.
-- Rows from before keep cluster '' (only finished ones matter then: a SQLite
-- orchestrator fails what it finds unfinished at start).

-- +goose Up
ALTER TABLE audits ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
CREATE INDEX audits_cluster_state ON audits (cluster, state);
