package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/cluster"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// oldSummary is the fleet view of one cluster as GetFleetSummary computed
// it before audit digests (migration 10), from the same store: the
// cluster's audits read page by page (at most 100) down to its newest
// success, that audit's report header for the changes and the accepted
// risks, its worst findings decoded from the stored findings, and the
// trend from a page of its newest audits. The worst findings are compared
// as the headlines the fleet view carries (store.Headline).
func oldSummary(ctx context.Context, t *testing.T, st *store.Store, c *secureauditv1.Cluster, worst, trend int) *secureauditv1.ClusterSummary {
	t.Helper()
	sum := &secureauditv1.ClusterSummary{Cluster: c}
	token := ""
	for read := 0; read < 100 && sum.LastSucceeded == nil; {
		audits, next, err := st.ListClusterAudits(ctx, c.GetName(), 10, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range audits {
			read++
			if sum.LastAudit == nil {
				sum.LastAudit = a
			}
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				sum.LastSucceeded = a
				break
			}
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_FAILED {
				sum.FailedAudits++
				if sum.LastFailed == nil {
					sum.LastFailed = a
				}
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	if trend > 0 {
		audits, _, err := st.ListClusterAudits(ctx, c.GetName(), trend, "")
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(audits)
		sum.Trend = audits
	}
	if sum.LastSucceeded == nil {
		return sum
	}
	input, err := st.ReportInput(ctx, sum.LastSucceeded.GetId())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	skip := map[string]bool{}
	if h := input.GetHistory(); h != nil {
		sum.HasPrevious = true
		sum.NewFindings = uint32(len(h.GetNewFindingIds()))
		sum.ChangedFindings = uint32(len(h.GetChanged()))
		sum.ResolvedFindings = uint32(len(h.GetResolved()))
	}
	for _, a := range input.GetAcceptedRisks() {
		skip[a.GetFinding().GetId()] = true
	}
	fs, err := st.WorstFindings(ctx, sum.LastSucceeded.GetId(), worst, skip)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		sum.WorstFindings = append(sum.WorstFindings, store.Headline(f))
	}
	return sum
}

// TestFleetSummaryDigests: the fleet view read from the audits' digests
// equals the fleet view computed the old way (oldSummary) on the same
// store, on both backends, for digests written when the findings were
// stored, for audits stored before digests existed (their digests
// removed, as an upgraded store has them) which the first read back-fills,
// and for the back-filled digests read again. The fleet mixes what the
// view must get right: a cluster never audited; one whose newest 105
// audits failed (no success among the 100 read); one with a running
// audit and failures after a success whose findings include platform-
// managed ones and accepted risks, more than 50 of them, several of each
// severity; a success stored without a report header; audits created at
// the same instant; label filters, the largest worst and a trend.
func TestFleetSummaryDigests(t *testing.T) { storagetest.Run(t, testFleetSummaryDigests) }

func testFleetSummaryDigests(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	c, _, st := serve(t, db)
	now := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC) // the server's clock
	var clusters []*secureauditv1.Cluster
	for i, name := range []string{"aks-empty", "aks-failing", "aks-busy", "aks-noheader", "aks-ties"} {
		cl := &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
			Labels: map[string]string{"environment": []string{"prod", "dev"}[i%2]}}
		if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: cl}); err != nil {
			t.Fatal(err)
		}
		clusters = append(clusters, cl)
	}
	n := 0
	audit := func(cluster string, state secureauditv1.AuditState, at time.Time) *secureauditv1.Audit {
		t.Helper()
		n++
		a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: cluster, State: state, CreatedAt: timestamppb.New(at)}
		switch state {
		case secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED:
			a.Summary = &secureauditv1.SeverityCounts{Critical: uint32(n % 3), High: uint32(n % 5), Low: 1}
		case secureauditv1.AuditState_AUDIT_STATE_FAILED:
			a.Error = fmt.Sprintf("failure %d", n)
		}
		if err := st.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	findings := func(base, count int) []*secureauditv1.Finding {
		var out []*secureauditv1.Finding
		for i := range count {
			f := finding(base+i, secureauditv1.Severity(1+(i*7)%5), i%9 == 4)
			f.Description = "what the report says at length"
			f.Controls = []string{"CIS-5.1.1", "SOC2-CC6.1"}
			f.MatchedRules = []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, Resources: []string{"*"}, ApiGroups: []string{"*"}}}
			out = append(out, f)
		}
		return out
	}
	ok, failed := secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, secureauditv1.AuditState_AUDIT_STATE_FAILED
	at := func(minutes int) time.Time { return now.Add(time.Duration(minutes-1000) * time.Minute) }

	// aks-failing: a success, then 105 failures.
	old := audit("aks-failing", ok, at(0))
	if err := st.SaveResult(ctx, old.GetId(), findings(100, 3), &secureauditv1.Report{Cluster: "aks-failing"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 105 {
		audit("aks-failing", failed, at(1+i))
	}
	// aks-busy: two successes, the newest compared with the first, 70
	// findings, two accepted; then failures and a running audit.
	first := audit("aks-busy", ok, at(200))
	if err := st.SaveResult(ctx, first.GetId(), findings(300, 10), &secureauditv1.Report{Cluster: "aks-busy"}, nil); err != nil {
		t.Fatal(err)
	}
	last := audit("aks-busy", ok, at(210))
	fs := findings(400, 70)
	input := &secureauditv1.Report{Cluster: "aks-busy",
		History: &secureauditv1.AuditHistory{PreviousAuditId: first.GetId(), PreviousGeneratedAt: first.GetCreatedAt(),
			NewFindingIds: []string{fs[0].GetId(), fs[1].GetId(), fs[2].GetId()},
			Changed:       []*secureauditv1.FindingChange{{FindingId: fs[3].GetId()}},
			Resolved:      findings(300, 4)},
		AcceptedRisks: []*secureauditv1.AcceptedFinding{{Finding: fs[0]}, {Finding: fs[5]}},
	}
	if err := st.SaveResult(ctx, last.GetId(), fs, input, nil); err != nil {
		t.Fatal(err)
	}
	audit("aks-busy", failed, at(220))
	audit("aks-busy", failed, at(230))
	audit("aks-busy", secureauditv1.AuditState_AUDIT_STATE_RUNNING, at(240))
	// aks-noheader: a success stored without its report header.
	bare := audit("aks-noheader", ok, at(300))
	if err := st.SaveResult(ctx, bare.GetId(), findings(500, 8), nil, nil); err != nil {
		t.Fatal(err)
	}
	// aks-ties: a success and a failure created at the same instant (the
	// higher ID is the newer), and a success before them.
	tied := audit("aks-ties", ok, at(400))
	if err := st.SaveResult(ctx, tied.GetId(), findings(600, 6), &secureauditv1.Report{Cluster: "aks-ties"}, nil); err != nil {
		t.Fatal(err)
	}
	same := audit("aks-ties", ok, at(410))
	if err := st.SaveResult(ctx, same.GetId(), findings(700, 6), &secureauditv1.Report{Cluster: "aks-ties", History: &secureauditv1.AuditHistory{PreviousAuditId: tied.GetId(), PreviousGeneratedAt: tied.GetCreatedAt()}}, nil); err != nil {
		t.Fatal(err)
	}
	audit("aks-ties", failed, at(410))

	requests := []*secureauditv1.GetFleetSummaryRequest{
		{},
		{Worst: 50, Trend: 7},
		{Worst: 1, Labels: map[string]string{"environment": "dev"}},
	}
	check := func(when string) {
		t.Helper()
		for _, req := range requests {
			resp, err := c.GetFleetSummary(ctx, req)
			if err != nil {
				t.Fatalf("%s, %v: %v", when, req, err)
			}
			worst := int(req.GetWorst())
			if worst == 0 {
				worst = 5
			}
			want := &secureauditv1.GetFleetSummaryResponse{Totals: &secureauditv1.SeverityCounts{}, GeneratedAt: timestamppb.New(now), OverdueAfterSeconds: 300}
			registered, err := st.ListClusters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, cl := range registered {
				if !cluster.Matches(cl, req.GetLabels()) {
					continue
				}
				s := oldSummary(ctx, t, st, cl, worst, int(req.GetTrend()))
				want.Clusters = append(want.Clusters, s)
				counts := s.GetLastSucceeded().GetSummary()
				want.Totals.Critical += counts.GetCritical()
				want.Totals.High += counts.GetHigh()
				want.Totals.Medium += counts.GetMedium()
				want.Totals.Low += counts.GetLow()
				want.Totals.Info += counts.GetInfo()
			}
			slices.SortFunc(want.Clusters, func(a, b *secureauditv1.ClusterSummary) int {
				return strings.Compare(a.GetCluster().GetName(), b.GetCluster().GetName())
			})
			if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
				t.Errorf("%s, %v: the fleet view differs from the old one (-old +new):\n%s", when, req, diff)
			}
		}
	}
	// The old view's facts this fleet is built to show, so that the
	// comparison is not between two empty views.
	if s := oldSummary(ctx, t, st, clusters[1], 5, 0); s.GetLastSucceeded() != nil || s.GetFailedAudits() != 100 {
		t.Fatalf("aks-failing, old view: last succeeded %v, %d failed", s.GetLastSucceeded(), s.GetFailedAudits())
	}
	if s := oldSummary(ctx, t, st, clusters[2], 50, 0); s.GetLastSucceeded().GetId() != last.GetId() || len(s.GetWorstFindings()) != 50 || s.GetFailedAudits() != 2 || !s.GetHasPrevious() {
		t.Fatalf("aks-busy, old view: %v", s)
	}

	check("digests written with the findings")
	digests := func() int {
		t.Helper()
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_digests`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	if got := digests(); got != 6 {
		t.Fatalf("%d digests stored, want one per stored result (6)", got)
	}
	// An upgraded store: audits stored before migration 10 have none.
	if _, err := db.ExecContext(ctx, `DELETE FROM audit_digests`); err != nil {
		t.Fatal(err)
	}
	check("digests back-filled")
	// The newest success of each cluster that has one among its newest
	// 100 audits: aks-busy, aks-noheader, aks-ties.
	if got := digests(); got != 3 {
		t.Errorf("%d digests back-filled, want 3", got)
	}
	check("back-filled digests read again")
}

// TestHeadline: a finding's headline keeps what names it and drops the
// detail, and is a valid Finding however much detail the finding had.
func TestHeadline(t *testing.T) {
	f := finding(1, secureauditv1.Severity_SEVERITY_HIGH, false)
	f.Subject = &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "alice"}
	want := proto.Clone(f).(*secureauditv1.Finding)
	f.Description = "long"
	f.Controls = []string{"CIS-5.1.1"}
	f.MatchedRules = []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, Resources: []string{"*"}, ApiGroups: []string{"*"}}}
	if diff := cmp.Diff(want, store.Headline(f), protocmp.Transform()); diff != "" {
		t.Errorf("headline (-want +got):\n%s", diff)
	}
}
