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

// TestSaveReviewState: the review state stored after the input (which
// SaveResult stored without it) is read back with the input, whose stored
// bytes are left as they were; an input stored with a review state of its
// own (before the review column existed) keeps it; an audit without a
// stored input is ErrNotFound, and nothing is stored for it.
func TestSaveReviewState(t *testing.T) { storagetest.Run(t, testSaveReviewState) }

func testSaveReviewState(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	a := audit(1, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	input := &secureauditv1.Report{AuditId: a.GetId(), Cluster: "prod", AccessReview: []*secureauditv1.ReviewSubject{{Key: "0123456789abcdef"}}}
	if err := s.SaveResult(ctx, a.GetId(), nil, input, nil); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := db.QueryRowContext(ctx, `SELECT data FROM report_inputs WHERE audit_id = ?`, a.GetId()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReportInput(ctx, a.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.Review != nil {
		t.Errorf("report input has review state %v before one was stored", got.GetReview())
	}
	state := &secureauditv1.ReviewState{Campaigns: []*secureauditv1.ReviewCampaign{{AuditId: a.GetId(), Cluster: "prod", Items: 3, Pending: 3, RevokeActions: 2}},
		Revocations: []*secureauditv1.Revocation{{Id: 7, Cluster: "prod", State: secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT}}}
	if err := s.SaveReviewState(ctx, a.GetId(), state); err != nil {
		t.Fatal(err)
	}
	if got, err = s.ReportInput(ctx, a.GetId()); err != nil {
		t.Fatal(err)
	}
	want := &secureauditv1.Report{AuditId: a.GetId(), Cluster: "prod", AccessReview: input.GetAccessReview(), Review: state}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("report input (-want +read):\n%s", diff)
	}
	var after []byte
	if err := db.QueryRowContext(ctx, `SELECT data FROM report_inputs WHERE audit_id = ?`, a.GetId()).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if string(after) != string(stored) {
		t.Error("SaveReviewState wrote the report input again")
	}
	// An empty state is a state: read back as one, not as none.
	if err := s.SaveReviewState(ctx, a.GetId(), &secureauditv1.ReviewState{}); err != nil {
		t.Fatal(err)
	}
	if got, err = s.ReportInput(ctx, a.GetId()); err != nil || got.Review == nil {
		t.Errorf("report input after an empty review state: review %v, %v; want an empty state", got.GetReview(), err)
	}
	// An input stored whole with its review state, as before the review
	// column: read back as stored.
	old := audit(3, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, old); err != nil {
		t.Fatal(err)
	}
	whole := &secureauditv1.Report{AuditId: old.GetId(), Cluster: "prod", Review: state}
	if err := s.SaveResult(ctx, old.GetId(), nil, whole, nil); err != nil {
		t.Fatal(err)
	}
	if got, err = s.ReportInput(ctx, old.GetId()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(whole, got, protocmp.Transform()); diff != "" {
		t.Errorf("report input stored with its review state (-stored +read):\n%s", diff)
	}
	other := audit(2, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveReviewState(ctx, other.GetId(), state); !errors.Is(err, ErrNotFound) {
		t.Errorf("storing the review state of an audit without an input: %v, want ErrNotFound", err)
	}
	if _, err := s.ReportInput(ctx, other.GetId()); !errors.Is(err, ErrNotFound) {
		t.Errorf("input of an audit without one after the refused review state: %v", err)
	}
}
