-- The fleet view's digest of each succeeded audit (issue 14), written with
-- the audit's findings (store.SaveResult) so that GetFleetSummary reads the
-- whole fleet in a few queries instead of decoding every cluster's findings:
-- whether the audit was compared with an earlier one and how many findings
-- were new, changed and resolved since (from its report's history), and
-- worst: its most severe findings, not platform-managed, not accepted risks,
-- most severe first, at most 50 (the contract's bound), each one's headline
-- (store.Headline) as a length-delimited protobuf Finding. Audits stored
-- before this migration get theirs on the fleet view's first read of them.

-- +goose Up
CREATE TABLE audit_digests (
	audit_id     TEXT PRIMARY KEY REFERENCES audits (id),
	has_previous BOOLEAN NOT NULL,
	new_findings INTEGER NOT NULL,
	changed      INTEGER NOT NULL,
	resolved     INTEGER NOT NULL,
	worst        BYTEA NOT NULL
);
