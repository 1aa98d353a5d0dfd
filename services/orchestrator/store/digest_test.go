package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// TestFleetHeadsDigest: FleetHeads returns a cluster's audits down to its
// last success with that audit's digest, the worst findings chosen when
// the findings were stored (most severe first, stored order within a
// severity, neither platform-managed nor accepted), as many as asked; a
// digest that does not decode is an error naming the audit.
func TestFleetHeadsDigest(t *testing.T) { storagetest.Run(t, testFleetHeadsDigest) }

func testFleetHeadsDigest(t *testing.T, db *storage.DB) {
	s := New(db)
	ctx := context.Background()
	if err := s.CreateCluster(ctx, &secureauditv1.Cluster{Name: "prod", AgentAddress: "prod.internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := &secureauditv1.Audit{Id: "00000000-0000-4000-8000-000000000001", Cluster: "prod", CreatedAt: timestamppb.New(at), State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED}
	failed := &secureauditv1.Audit{Id: "00000000-0000-4000-8000-000000000002", Cluster: "prod", CreatedAt: timestamppb.New(at.Add(time.Hour)), State: secureauditv1.AuditState_AUDIT_STATE_FAILED}
	for _, a := range []*secureauditv1.Audit{ok, failed} {
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var fs []*secureauditv1.Finding
	for i, sev := range []secureauditv1.Severity{4, 1, 2, 1, 1, 2} {
		fs = append(fs, &secureauditv1.Finding{Id: fmt.Sprintf("%016x", i), RuleId: "RBAC-001", Title: "t", Severity: sev, SeverityReason: "r", Remediation: "x",
			Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Infrastructure: i == 3, Description: "long"})
	}
	input := &secureauditv1.Report{History: &secureauditv1.AuditHistory{NewFindingIds: []string{fs[0].GetId()}}, AcceptedRisks: []*secureauditv1.AcceptedFinding{{Finding: fs[4]}}}
	if err := s.SaveResult(ctx, ok.GetId(), fs, input, nil); err != nil {
		t.Fatal(err)
	}
	heads, err := s.FleetHeads(ctx, []string{"prod"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	h := heads["prod"]
	var worst []string
	for _, f := range h.GetDigest().Worst {
		worst = append(worst, f.GetId())
		if f.GetDescription() != "" {
			t.Errorf("worst finding %s kept its description: not a headline", f.GetId())
		}
	}
	if h.GetLast().GetId() != failed.GetId() || h.GetLastFailed().GetId() != failed.GetId() || h.GetFailed() != 1 || h.GetSucceeded().GetId() != ok.GetId() {
		t.Errorf("head: last %s, last failed %s, %d failed, succeeded %s; want %s, %s, 1, %s",
			h.GetLast().GetId(), h.GetLastFailed().GetId(), h.GetFailed(), h.GetSucceeded().GetId(), failed.GetId(), failed.GetId(), ok.GetId())
	}
	// Critical 1 (3 platform-managed, 4 accepted), then high 2 and 5.
	if diff := cmp.Diff([]string{fs[1].GetId(), fs[2].GetId(), fs[5].GetId()}, worst); diff != "" {
		t.Errorf("worst (-want +got):\n%s", diff)
	}
	if d := h.GetDigest(); !d.HasPrevious || d.New != 1 || d.Changed != 0 || d.Resolved != 0 {
		t.Errorf("digest %+v", d)
	}

	if _, err := db.ExecContext(ctx, `UPDATE audit_digests SET worst = ? WHERE audit_id = ?`, []byte{0x0a, 0x7f, 0x01}, ok.GetId()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FleetHeads(ctx, []string{"prod"}, 3); err == nil || !strings.Contains(err.Error(), "digest of "+ok.GetId()) {
		t.Errorf("a digest that does not decode: %v, want an error naming the audit", err)
	}
}

// TestFleetHeadsBounded: on both backends, a cluster with more than
// HeadAudits failures since its success, or none ever, counts the
// HeadAudits newest and keeps the newest and the newest failed only; a
// running audit after failures is the newest, not the newest failed; a
// fleet larger than one query's batch is read in several, each cluster
// once.
func TestFleetHeadsBounded(t *testing.T) { storagetest.Run(t, testFleetHeadsBounded) }

func testFleetHeadsBounded(t *testing.T, db *storage.DB) {
	s := New(db)
	ctx := context.Background()
	defer func(b int) { fleetBatch = b }(fleetBatch)
	fleetBatch = 2
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	audit := func(cluster string, state secureauditv1.AuditState) *secureauditv1.Audit {
		t.Helper()
		n++
		a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: cluster, CreatedAt: timestamppb.New(at.Add(time.Duration(n) * time.Minute)), State: state}
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	var names []string
	for _, c := range []string{"c1", "c2", "c3", "c4", "c5"} {
		if err := s.CreateCluster(ctx, &secureauditv1.Cluster{Name: c, AgentAddress: c + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent"}); err != nil {
			t.Fatal(err)
		}
		names = append(names, c)
	}
	failed, ok := secureauditv1.AuditState_AUDIT_STATE_FAILED, secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
	// c1: never succeeded, 130 failures.
	var c1 *secureauditv1.Audit
	for range 130 {
		c1 = audit("c1", failed)
	}
	// c2: a success, 120 failures.
	audit("c2", ok)
	for range 120 {
		audit("c2", failed)
	}
	// c3: a success, two failures, a running audit.
	okC3 := audit("c3", ok)
	audit("c3", failed)
	c3 := audit("c3", failed)
	running := audit("c3", secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	// c5: one success.
	okC5 := audit("c5", ok)
	heads, err := s.FleetHeads(ctx, names, 3)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Last, LastFailed, Succeeded string
		Failed                      uint32
	}
	got := map[string]view{}
	for c, h := range heads {
		got[c] = view{h.GetLast().GetId(), h.GetLastFailed().GetId(), h.GetSucceeded().GetId(), h.GetFailed()}
	}
	c2 := fmt.Sprintf("00000000-0000-4000-8000-%012d", 251)
	want := map[string]view{
		"c1": {Last: c1.GetId(), LastFailed: c1.GetId(), Failed: HeadAudits},
		"c2": {Last: c2, LastFailed: c2, Failed: HeadAudits},
		"c3": {Last: running.GetId(), LastFailed: c3.GetId(), Succeeded: okC3.GetId(), Failed: 2},
		"c5": {Last: okC5.GetId(), Succeeded: okC5.GetId()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("heads (-want +got):\n%s", diff)
	}
	if heads["c1"].GetLast().GetError() != "" || heads["c1"].GetLast().GetCluster() != "c1" {
		t.Errorf("c1's last audit is not decoded: %v", heads["c1"].GetLast())
	}
}
