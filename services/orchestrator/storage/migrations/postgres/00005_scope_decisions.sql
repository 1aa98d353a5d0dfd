-- Who asked for and who made each scope decision: requests for approval,
-- and the verified people behind approvals (by the approval's evidence
-- entry). Persons are stored as protojson of Decider (issue 15).

-- +goose Up
CREATE TABLE scope_requests (
	id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	workload       TEXT NOT NULL,
	digest         TEXT NOT NULL,
	ticket         TEXT NOT NULL,
	reason         TEXT NOT NULL,
	requested_by   TEXT NOT NULL,
	requested_ns   BIGINT NOT NULL,
	evidence_index BIGINT NOT NULL
);
CREATE TABLE scope_deciders (
	evidence_index BIGINT PRIMARY KEY,
	approved_by    TEXT NOT NULL,
	requested_by   TEXT NOT NULL
);
