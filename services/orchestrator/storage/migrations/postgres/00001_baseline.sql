-- The schema of every orchestrator table (store, controls, schedules,
-- evidence log, scope approvals), the PostgreSQL twin of
-- migrations/sqlite/00001_baseline.sql: BIGINT for nanosecond times and
-- counters, BYTEA for protobuf and evidence records, identity columns for
-- append-only sequences, BOOLEAN for flags.

-- +goose Up
CREATE TABLE audits (
	id         TEXT PRIMARY KEY,
	created_ns BIGINT NOT NULL,
	state      INTEGER NOT NULL,
	data       BYTEA NOT NULL
);
CREATE INDEX audits_created ON audits (created_ns DESC, id DESC);
CREATE TABLE findings (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	idx      INTEGER NOT NULL,
	id       TEXT NOT NULL,
	rule_id  TEXT NOT NULL,
	severity INTEGER NOT NULL,
	data     BYTEA NOT NULL,
	PRIMARY KEY (audit_id, idx)
);
CREATE TABLE reports (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	format   INTEGER NOT NULL,
	data     BYTEA NOT NULL,
	PRIMARY KEY (audit_id, format)
);
CREATE TABLE report_inputs (
	audit_id TEXT PRIMARY KEY REFERENCES audits (id),
	data     BYTEA NOT NULL
);
CREATE TABLE events (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	seq      BIGINT NOT NULL,
	data     BYTEA NOT NULL,
	PRIMARY KEY (audit_id, seq)
);
CREATE TABLE model_calls (
	audit_id TEXT NOT NULL,
	idx      INTEGER NOT NULL,
	data     BYTEA NOT NULL,
	PRIMARY KEY (audit_id, idx)
);
CREATE TABLE token_samples (
	seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agent            TEXT NOT NULL,
	provider         TEXT NOT NULL,
	response_model   TEXT NOT NULL,
	template_version TEXT NOT NULL,
	request_model    TEXT NOT NULL,
	audit_id         TEXT NOT NULL,
	time_ns          BIGINT NOT NULL,
	per_item         DOUBLE PRECISION NOT NULL,
	calls            BIGINT NOT NULL,
	truncated        BIGINT NOT NULL
);
CREATE INDEX token_samples_key ON token_samples (agent, provider, response_model, template_version, seq);
CREATE INDEX token_samples_request ON token_samples (agent, provider, request_model, seq);
CREATE TABLE token_alerts (
	seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	data BYTEA NOT NULL
);
CREATE TABLE anomalies (
	seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	audit_id TEXT NOT NULL,
	kind     INTEGER NOT NULL,
	data     BYTEA NOT NULL
);
CREATE INDEX anomalies_audit ON anomalies (audit_id, seq);
CREATE TABLE schedules (
	name TEXT PRIMARY KEY,
	data BYTEA NOT NULL
);
CREATE TABLE evidence_entries (
	idx     BIGINT PRIMARY KEY,
	time_ns BIGINT NOT NULL,
	record  BYTEA NOT NULL
);
CREATE INDEX evidence_entries_time ON evidence_entries (time_ns);
CREATE TABLE evidence_hashes (
	idx  BIGINT PRIMARY KEY,
	hash BYTEA NOT NULL
);
CREATE TABLE scope_approvals (
	id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	workload       TEXT NOT NULL,
	digest         TEXT NOT NULL,
	approver       TEXT NOT NULL,
	caller         TEXT NOT NULL,
	ticket         TEXT NOT NULL,
	reason         TEXT NOT NULL,
	approved_ns    BIGINT NOT NULL,
	development    BOOLEAN NOT NULL,
	evidence_index BIGINT NOT NULL
);
CREATE TABLE scope_reviews (
	id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	reviewer       TEXT NOT NULL,
	reviewed_ns    BIGINT NOT NULL,
	evidence_index BIGINT NOT NULL
);
CREATE TABLE scope_calls (
	period   BIGINT NOT NULL,
	server   TEXT NOT NULL,
	method   TEXT NOT NULL,
	caller   TEXT NOT NULL,
	code     INTEGER NOT NULL,
	count    BIGINT NOT NULL,
	first_ns BIGINT NOT NULL,
	last_ns  BIGINT NOT NULL,
	PRIMARY KEY (period, server, method, caller, code)
);
