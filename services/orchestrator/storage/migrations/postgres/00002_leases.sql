-- Several replicas: an audit is held by the replica that claimed it (FOR
-- UPDATE SKIP LOCKED) for as long as that replica renews its lease; a cancel
-- asked of another replica is passed on through cancel_requested; a
-- schedule's run is claimed once per due time.

-- +goose Up
ALTER TABLE audits ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE audits ADD COLUMN lease_expires_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audits ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX audits_state ON audits (state, created_ns);
CREATE TABLE schedule_runs (
	name       TEXT NOT NULL,
	due_ns     BIGINT NOT NULL,
	replica    TEXT NOT NULL,
	claimed_ns BIGINT NOT NULL,
	PRIMARY KEY (name, due_ns)
);
