-- Risk acceptances (issue 15): the grant each covers as its finding showed
-- it when requested (acceptance is protojson of Acceptance: rule, subject,
-- binding, role, the rules held), who requested and who approved it
-- (protojson of Decider), its reason, ticket and expiry.

-- +goose Up
CREATE TABLE risk_acceptances (
	id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	cluster                 TEXT NOT NULL,
	rule_id                 TEXT NOT NULL,
	acceptance              TEXT NOT NULL,
	requested_by            TEXT NOT NULL,
	approved_by             TEXT NOT NULL DEFAULT '',
	expires_ns              BIGINT NOT NULL,
	approved_ns             BIGINT NOT NULL DEFAULT 0,
	request_evidence_index  BIGINT NOT NULL,
	approval_evidence_index BIGINT NOT NULL DEFAULT 0,
	expiry_recorded         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX risk_acceptances_cluster ON risk_acceptances (cluster, rule_id);
