-- Access review campaigns (issue 15): one per audit, its items (protojson
-- of ReviewItem without decisions, as a JSON array) and due date; each
-- item's decision (protojson of ReviewDecision, with the verified person);
-- and the tracked revocations (protojson of Revocation), checked at each
-- audit of their cluster until the grant is gone.

-- +goose Up
CREATE TABLE review_campaigns (
	audit_id         TEXT PRIMARY KEY,
	cluster          TEXT NOT NULL,
	opened_ns        BIGINT NOT NULL,
	due_ns           BIGINT NOT NULL,
	items            TEXT NOT NULL,
	overdue_recorded BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX review_campaigns_cluster ON review_campaigns (cluster, opened_ns);
CREATE TABLE review_decisions (
	audit_id   TEXT NOT NULL,
	item_key   TEXT NOT NULL,
	decision   TEXT NOT NULL,
	decided_ns BIGINT NOT NULL,
	PRIMARY KEY (audit_id, item_key)
);
CREATE TABLE revocations (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	cluster    TEXT NOT NULL,
	audit_id   TEXT NOT NULL,
	source     TEXT NOT NULL,
	state      BIGINT NOT NULL,
	revocation TEXT NOT NULL,
	UNIQUE (audit_id, source)
);
CREATE INDEX revocations_cluster ON revocations (cluster, state);
