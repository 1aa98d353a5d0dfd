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
	var audits, worst []string
	for _, a := range h.GetAudits() {
		audits = append(audits, a.GetId())
	}
	for _, f := range h.GetDigest().Worst {
		worst = append(worst, f.GetId())
		if f.GetDescription() != "" {
			t.Errorf("worst finding %s kept its description: not a headline", f.GetId())
		}
	}
	if diff := cmp.Diff([]string{failed.GetId(), ok.GetId()}, audits); diff != "" {
		t.Errorf("audits (-want +got):\n%s", diff)
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
