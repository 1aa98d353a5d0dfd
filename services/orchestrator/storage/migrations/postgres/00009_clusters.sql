-- Clusters as first-class objects (issue 14): each registered cluster is
-- served by its own rbac-agent, dialled per audit at agent_address with the
-- SPIFFE ID agent_spiffe_id. data is the protobuf Cluster (labels, Entra
-- tenant, AKS resource ID, schedule); the columns are what queries need.
-- Audits, schedules, reports and evidence entries name the cluster as
-- before (audits.cluster).

-- +goose Up
CREATE TABLE clusters (
	name            TEXT PRIMARY KEY,
	agent_address   TEXT NOT NULL,
	agent_spiffe_id TEXT NOT NULL,
	registered_ns   BIGINT NOT NULL,
	data            BYTEA NOT NULL
);
CREATE INDEX audits_cluster_created ON audits (cluster, created_ns DESC, id DESC);
