package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// TestFleetHeadsPlan: on both backends, with statistics gathered over a
// fleet where one cluster never succeeded (130 failed audits) and one did,
// the lookup of each cluster's newest succeeded audit in FleetHeads' query
// is a probe of audits_cluster_state_created (migration 00012) on cluster
// and state, in the index's order (no sort): not a walk of the cluster's
// audits filtered on state, which reads all of a never-succeeded cluster's
// rows, nor a sort of all its successes.
func TestFleetHeadsPlan(t *testing.T) { storagetest.Run(t, testFleetHeadsPlan) }

func testFleetHeadsPlan(t *testing.T, db *storage.DB) {
	s := New(db)
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	audit := func(cluster string, state secureauditv1.AuditState) {
		t.Helper()
		n++
		a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: cluster, CreatedAt: timestamppb.New(at.Add(time.Duration(n) * time.Minute)), State: state}
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"c1", "c2"} {
		if err := s.CreateCluster(ctx, &secureauditv1.Cluster{Name: c, AgentAddress: c + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 130 {
		audit("c1", secureauditv1.AuditState_AUDIT_STATE_FAILED)
	}
	for range 20 {
		audit("c2", secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	explain := func(query string, args ...any) string {
		t.Helper()
		prefix := "EXPLAIN "
		if db.Dialect() == storage.SQLite {
			prefix = "EXPLAIN QUERY PLAN "
		}
		rows, err := db.QueryContext(ctx, prefix+query, args...)
		if err != nil {
			t.Fatalf("explain: %v", err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			// The plan's text is the last column on both backends.
			fmt.Fprintf(&plan, "%s\n", vals[len(vals)-1])
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return plan.String()
	}

	query, args := fleetHeadsQuery(db.Dialect(), []string{"c1", "c2"})
	plan := explain(query, args...)
	if db.Dialect() == storage.SQLite {
		// The two scalar subqueries (its time and its ID).
		probe := "SEARCH o USING COVERING INDEX audits_cluster_state_created (cluster=? AND state=?)"
		if got := strings.Count(plan, probe); got != 2 {
			t.Errorf("the last success is looked up %d times with %q, want 2; plan:\n%s", got, probe, plan)
		}
	} else {
		// Each subplan: Limit over the index in order, no Sort.
		for i, sub := range strings.Split(plan, "SubPlan")[1:] {
			sub = strings.SplitN(sub, "->  Nested Loop", 2)[0]
			if !strings.Contains(sub, "using audits_cluster_state_created on audits") || strings.Contains(sub, "Sort") {
				t.Errorf("subplan %d does not read the last success off audits_cluster_state_created in order:\n%s\nplan:\n%s", i+1, sub, plan)
			}
		}
		if got := strings.Count(plan, "SubPlan"); got != 2 {
			t.Errorf("%d subplans, want the 2 lookups of the last success; plan:\n%s", got, plan)
		}
	}

}
