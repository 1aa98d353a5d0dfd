-- The public key the evidence log is signed with, recorded by the first
-- orchestrator that opens the database: on PostgreSQL every replica must
-- sign with it.

-- +goose Up
CREATE TABLE evidence_key (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	public_key TEXT NOT NULL
);
