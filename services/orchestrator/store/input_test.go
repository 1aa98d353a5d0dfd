package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// TestReplaceReportInput: the input stored again (with the review state
// set after the findings were stored) is the one read back; an audit
// without a stored input is ErrNotFound, and nothing is stored for it.
func TestReplaceReportInput(t *testing.T) { storagetest.Run(t, testReplaceReportInput) }

func testReplaceReportInput(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	a := audit(1, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	input := &secureauditv1.Report{AuditId: a.GetId(), Cluster: "prod"}
	if err := s.SaveResult(ctx, a.GetId(), nil, input, nil); err != nil {
		t.Fatal(err)
	}
	reviewed := &secureauditv1.Report{AuditId: a.GetId(), Cluster: "prod", Review: &secureauditv1.ReviewState{
		Campaigns: []*secureauditv1.ReviewCampaign{{AuditId: a.GetId(), Cluster: "prod", Items: 3, Pending: 3, RevokeActions: 2}}}}
	if err := s.ReplaceReportInput(ctx, a.GetId(), reviewed); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReportInput(ctx, a.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reviewed, got, protocmp.Transform()); diff != "" {
		t.Errorf("report input (-replaced +read):\n%s", diff)
	}
	other := audit(2, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceReportInput(ctx, other.GetId(), reviewed); !errors.Is(err, ErrNotFound) {
		t.Errorf("replacing the input of an audit without one: %v, want ErrNotFound", err)
	}
	if _, err := s.ReportInput(ctx, other.GetId()); !errors.Is(err, ErrNotFound) {
		t.Errorf("input of an audit without one after the refused replace: %v", err)
	}
}
