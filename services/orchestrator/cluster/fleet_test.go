package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

func finding(n int, sev secureauditv1.Severity, infra bool) *secureauditv1.Finding {
	return &secureauditv1.Finding{
		Id: fmt.Sprintf("%016x", n), RuleId: fmt.Sprintf("RBAC-%03d", n), Title: fmt.Sprintf("finding %d", n),
		Severity: sev, SeverityReason: "base", Remediation: "fix it", Infrastructure: infra,
		Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
	}
}

// TestFleetSummary reads the fleet view through the server chain over mTLS
// on both backends: per cluster the last audit, the last success's counts,
// its changes since the audit before it (from the history the audit
// stored), its worst findings (not platform-managed ones, not accepted
// risks), the failures since, overdue schedules; totals; label filters.
func TestFleetSummary(t *testing.T) { storagetest.Run(t, testFleetSummary) }

func testFleetSummary(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	c, sched, st := serve(t, db)
	now := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC) // the server's clock
	register := func(name, env, cron string) {
		t.Helper()
		cl := &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
			Labels: map[string]string{"environment": env}, Schedule: cron}
		if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: cl}); err != nil {
			t.Fatal(err)
		}
	}
	register("aks-prod", "prod", "@daily")
	register("aks-dev", "dev", "")
	register("aks-new", "prod", "@hourly")
	// aks-prod's schedule was due an hour ago and did not run: overdue.
	// aks-new's is due in the future.
	scheds, err := sched.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var overdue *secureauditv1.Schedule
	for _, sc := range scheds {
		if sc.GetName() == "aks-prod" {
			sc.NextRun = timestamppb.New(now.Add(-time.Hour))
			overdue = sc
		} else {
			sc.NextRun = timestamppb.New(now.Add(time.Hour))
		}
		if err := st.SaveSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}

	n := 0
	audit := func(cluster string, state secureauditv1.AuditState, summary *secureauditv1.SeverityCounts, errMsg string) *secureauditv1.Audit {
		t.Helper()
		n++
		a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: cluster, State: state, Summary: summary, Error: errMsg,
			CreatedAt: timestamppb.New(now.Add(time.Duration(n-100) * time.Minute))}
		if err := st.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	ok := secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
	failed := secureauditv1.AuditState_AUDIT_STATE_FAILED
	first := audit("aks-prod", ok, &secureauditv1.SeverityCounts{High: 4}, "")
	if err := st.SaveResult(ctx, first.GetId(), []*secureauditv1.Finding{finding(9, secureauditv1.Severity_SEVERITY_CRITICAL, false)}, &secureauditv1.Report{Cluster: "aks-prod"}, nil); err != nil {
		t.Fatal(err)
	}
	prodCounts := &secureauditv1.SeverityCounts{High: 2, Medium: 1}
	last := audit("aks-prod", ok, prodCounts, "")
	findings := []*secureauditv1.Finding{
		finding(1, secureauditv1.Severity_SEVERITY_CRITICAL, true),  // platform-managed
		finding(2, secureauditv1.Severity_SEVERITY_CRITICAL, false), // accepted
		finding(3, secureauditv1.Severity_SEVERITY_MEDIUM, false),
		finding(4, secureauditv1.Severity_SEVERITY_HIGH, false),
		finding(5, secureauditv1.Severity_SEVERITY_HIGH, false),
	}
	input := &secureauditv1.Report{Cluster: "aks-prod",
		History: &secureauditv1.AuditHistory{PreviousAuditId: first.GetId(), PreviousGeneratedAt: first.GetCreatedAt(),
			NewFindingIds: []string{findings[3].GetId(), findings[4].GetId()},
			Changed:       []*secureauditv1.FindingChange{{FindingId: findings[2].GetId()}},
			Resolved:      []*secureauditv1.Finding{finding(9, secureauditv1.Severity_SEVERITY_CRITICAL, false), finding(8, secureauditv1.Severity_SEVERITY_LOW, false), finding(7, secureauditv1.Severity_SEVERITY_LOW, false)}},
		AcceptedRisks: []*secureauditv1.AcceptedFinding{{Finding: findings[1]}},
	}
	if err := st.SaveResult(ctx, last.GetId(), findings, input, nil); err != nil {
		t.Fatal(err)
	}
	audit("aks-prod", failed, nil, "rbac-agent: collect: unavailable")
	newestFailure := audit("aks-prod", failed, nil, "the rbac-agent at x registered for cluster \"aks-prod\" serves cluster \"aks-dev\"")
	devCounts := &secureauditv1.SeverityCounts{Critical: 1, Low: 3}
	dev := audit("aks-dev", ok, devCounts, "")
	if err := st.SaveResult(ctx, dev.GetId(), []*secureauditv1.Finding{finding(6, secureauditv1.Severity_SEVERITY_CRITICAL, false)}, &secureauditv1.Report{Cluster: "aks-dev"}, nil); err != nil {
		t.Fatal(err)
	}

	// aks-dev failed twelve times since: its last success is on the
	// second page the summary reads.
	for range 12 {
		audit("aks-dev", failed, nil, "rbac-agent: collect: unavailable")
	}

	resp, err := c.GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{Worst: 2})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*secureauditv1.ClusterSummary{}
	var names []string
	for _, s := range resp.GetClusters() {
		byName[s.GetCluster().GetName()] = s
		names = append(names, s.GetCluster().GetName())
	}
	if !cmp.Equal(names, []string{"aks-dev", "aks-new", "aks-prod"}) {
		t.Fatalf("clusters %v, want every registered one by name", names)
	}
	prod := byName["aks-prod"]
	ids := func(fs []*secureauditv1.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.GetId())
		}
		return out
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"last audit", prod.GetLastAudit().GetId(), newestFailure.GetId()},
		{"last succeeded", prod.GetLastSucceeded().GetId(), last.GetId()},
		{"failed since", prod.GetFailedAudits(), uint32(2)},
		{"last failed", prod.GetLastFailed().GetError(), newestFailure.GetError()},
		{"has previous", prod.GetHasPrevious(), true},
		{"new", prod.GetNewFindings(), uint32(2)},
		{"changed", prod.GetChangedFindings(), uint32(1)},
		{"resolved", prod.GetResolvedFindings(), uint32(3)},
		// Most severe first, leaving out the platform-managed and the
		// accepted critical findings; stored order within a severity.
		{"worst", ids(prod.GetWorstFindings()), []string{findings[3].GetId(), findings[4].GetId()}},
		{"overdue", len(prod.GetOverdueSchedules()), 1},
	} {
		if !cmp.Equal(c.got, c.want) {
			t.Errorf("aks-prod %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if diff := cmp.Diff(overdue, prod.GetOverdueSchedules()[0], protocmp.Transform()); len(prod.GetOverdueSchedules()) == 1 && diff != "" {
		t.Errorf("overdue schedule (-want +got):\n%s", diff)
	}
	if d := byName["aks-dev"]; d.GetHasPrevious() || d.GetLastSucceeded().GetId() != dev.GetId() || d.GetFailedAudits() != 12 || d.GetLastFailed() == nil ||
		!cmp.Equal(ids(d.GetWorstFindings()), []string{finding(6, 0, false).GetId()}) {
		t.Errorf("aks-dev, a first audit and twelve failures since: %v", d)
	}
	if nw := byName["aks-new"]; nw.GetLastAudit() != nil || nw.GetLastSucceeded() != nil || len(nw.GetOverdueSchedules()) != 0 || len(nw.GetWorstFindings()) != 0 {
		t.Errorf("aks-new, never audited, its schedule not due: %v", nw)
	}
	if diff := cmp.Diff(&secureauditv1.SeverityCounts{Critical: 1, High: 2, Medium: 1, Low: 3}, resp.GetTotals(), protocmp.Transform()); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	if resp.GetOverdueAfterSeconds() != 300 || !resp.GetGeneratedAt().AsTime().Equal(now) {
		t.Errorf("overdue after %ds, generated at %v", resp.GetOverdueAfterSeconds(), resp.GetGeneratedAt().AsTime())
	}

	// By label: the prod clusters only, totals of those.
	resp, err = c.GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{Labels: map[string]string{"environment": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, s := range resp.GetClusters() {
		names = append(names, s.GetCluster().GetName())
	}
	if !cmp.Equal(names, []string{"aks-new", "aks-prod"}) {
		t.Errorf("environment=prod: %v", names)
	}
	if diff := cmp.Diff(prodCounts, resp.GetTotals(), protocmp.Transform()); diff != "" {
		t.Errorf("environment=prod totals (-want +got):\n%s", diff)
	}
	if got := len(resp.GetClusters()[1].GetWorstFindings()); got != 3 {
		t.Errorf("default worst findings of aks-prod: %d, want all 3 it has (default 5)", got)
	}
}
