-- Risk acceptances (issue 15): the grant each covers as its finding showed
-- it when requested (acceptance is protojson of Acceptance: rule, subject,
-- binding, role, the rules held), who requested and who approved it
-- (protojson of Decider), its reason, ticket and expiry.

-- +goose Up
CREATE TABLE risk_acceptances (
	id                      INTEGER PRIMARY KEY AUTOINCREMENT,
	cluster                 TEXT NOT NULL,
	rule_id                 TEXT NOT NULL,
	acceptance              TEXT NOT NULL,
	requested_by            TEXT NOT NULL,
	approved_by             TEXT NOT NULL DEFAULT '',
	expires_ns              INTEGER NOT NULL,
	approved_ns             INTEGER NOT NULL DEFAULT 0,
	request_evidence_index  INTEGER NOT NULL,
	approval_evidence_index INTEGER NOT NULL DEFAULT 0,
	expiry_recorded         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX risk_acceptances_cluster ON risk_acceptances (cluster, rule_id);
