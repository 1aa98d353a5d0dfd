-- The orchestrator's schema before versioned migrations, as the three packages
-- created it in one SQLite file (the schema constants of store/store.go,
-- store/controls.go, store/schedules.go, evidence/log.go and approval/approval.go
-- at commit 3e2652b). TestLegacyDatabase creates a database with it and opens it.

CREATE TABLE IF NOT EXISTS audits (
	id         TEXT PRIMARY KEY,
	created_ns INTEGER NOT NULL,
	state      INTEGER NOT NULL,
	data       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audits_created ON audits (created_ns DESC, id DESC);
CREATE TABLE IF NOT EXISTS findings (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	idx      INTEGER NOT NULL,
	id       TEXT NOT NULL,
	rule_id  TEXT NOT NULL,
	severity INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (audit_id, idx)
);
CREATE TABLE IF NOT EXISTS reports (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	format   INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (audit_id, format)
);
CREATE TABLE IF NOT EXISTS report_inputs (
	audit_id TEXT PRIMARY KEY REFERENCES audits (id),
	data     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	audit_id TEXT NOT NULL REFERENCES audits (id),
	seq      INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (audit_id, seq)
);

CREATE TABLE IF NOT EXISTS model_calls (
	audit_id TEXT NOT NULL,
	idx      INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (audit_id, idx)
);
CREATE TABLE IF NOT EXISTS token_samples (
	seq              INTEGER PRIMARY KEY AUTOINCREMENT,
	agent            TEXT NOT NULL,
	provider         TEXT NOT NULL,
	response_model   TEXT NOT NULL,
	template_version TEXT NOT NULL,
	request_model    TEXT NOT NULL,
	audit_id         TEXT NOT NULL,
	time_ns          INTEGER NOT NULL,
	per_item         REAL NOT NULL,
	calls            INTEGER NOT NULL,
	truncated        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS token_samples_key ON token_samples (agent, provider, response_model, template_version, seq);
CREATE INDEX IF NOT EXISTS token_samples_request ON token_samples (agent, provider, request_model, seq);
CREATE TABLE IF NOT EXISTS token_alerts (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS anomalies (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	audit_id TEXT NOT NULL,
	kind     INTEGER NOT NULL,
	data     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_audit ON anomalies (audit_id, seq);

CREATE TABLE IF NOT EXISTS schedules (
	name TEXT PRIMARY KEY,
	data BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS evidence_entries (
	idx     INTEGER PRIMARY KEY,
	time_ns INTEGER NOT NULL,
	record  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_entries_time ON evidence_entries (time_ns);
CREATE TABLE IF NOT EXISTS evidence_hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS scope_approvals (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	workload       TEXT NOT NULL,
	digest         TEXT NOT NULL,
	approver       TEXT NOT NULL,
	caller         TEXT NOT NULL,
	ticket         TEXT NOT NULL,
	reason         TEXT NOT NULL,
	approved_ns    INTEGER NOT NULL,
	development    INTEGER NOT NULL,
	evidence_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scope_reviews (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	reviewer       TEXT NOT NULL,
	reviewed_ns    INTEGER NOT NULL,
	evidence_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scope_calls (
	period   INTEGER NOT NULL,
	server   TEXT NOT NULL,
	method   TEXT NOT NULL,
	caller   TEXT NOT NULL,
	code     INTEGER NOT NULL,
	count    INTEGER NOT NULL,
	first_ns INTEGER NOT NULL,
	last_ns  INTEGER NOT NULL,
	PRIMARY KEY (period, server, method, caller, code)
);
