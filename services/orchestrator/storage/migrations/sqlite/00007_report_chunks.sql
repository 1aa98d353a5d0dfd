-- Rendered documents stored as they arrive from the report-agent, in
-- chunks of at most 1 MiB keyed by sequence (issue 12): no document is
-- held whole by the orchestrator or the database driver, and none meets
-- PostgreSQL's 1 GB field limit. A reports row with chunks > 0 says the
-- document is whole and in report_chunks; chunks = 0 is a document stored
-- whole in reports.data, as before.

-- +goose Up
ALTER TABLE reports ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
CREATE TABLE report_chunks (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	format   INTEGER NOT NULL,
	seq      INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (audit_id, format, seq)
);

