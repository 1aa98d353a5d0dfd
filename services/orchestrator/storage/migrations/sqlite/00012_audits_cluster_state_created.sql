-- The fleet view's lookup of each cluster's newest succeeded audit
-- (store.FleetHeads: WHERE cluster = ? AND state = ? ORDER BY created_ns
-- DESC, id DESC LIMIT 1) is a single index probe: audits_cluster_created
-- (00009) has no state, so SQLite walked all of a cluster's audits, filtering
-- on state, when none had succeeded; audits_cluster_state (00003) has no
-- time, so PostgreSQL read and sorted all of a cluster's succeeded audits.
-- This index leads with (cluster, state), so it serves every lookup that
-- audits_cluster_state served (the claim's check that no other audit of the
-- cluster is held), which is dropped: one index more to write per audit row
-- change, not two.

-- +goose Up
CREATE INDEX audits_cluster_state_created ON audits (cluster, state, created_ns DESC, id DESC);
DROP INDEX audits_cluster_state;

