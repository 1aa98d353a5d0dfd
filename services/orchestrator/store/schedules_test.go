package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

func TestSchedules(t *testing.T) { storagetest.Run(t, testSchedules) }

func testSchedules(t *testing.T, db *storage.DB) {
	s := New(db)
	ctx := context.Background()
	b := &secureauditv1.Schedule{Name: "b", Cluster: "prod", Cron: "@daily", RetentionDays: 7}
	a := &secureauditv1.Schedule{Name: "a", Cluster: "dev", Cron: "0 2 * * *"}
	for _, sc := range []*secureauditv1.Schedule{b, a} {
		if err := s.SaveSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	b.LastMessage = "started"
	if err := s.SaveSchedule(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListSchedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*secureauditv1.Schedule{a, b}, got, protocmp.Transform()); diff != "" {
		t.Errorf("ListSchedules (-want +got):\n%s", diff)
	}
	if err := s.DeleteSchedule(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSchedule(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a missing schedule: %v, want ErrNotFound", err)
	}
}

func TestPruneAudits(t *testing.T) { storagetest.Run(t, testPruneAudits) }

func testPruneAudits(t *testing.T, db *storage.DB) {
	s := New(db)
	ctx := context.Background()
	day := func(d int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC))
	}
	mk := func(id, cluster string, d int, state secureauditv1.AuditState) {
		a := &secureauditv1.Audit{Id: id, Cluster: cluster, CreatedAt: day(d), State: state}
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvent(ctx, &secureauditv1.AuditEvent{AuditId: id, Sequence: 1, Time: day(d), State: state}); err != nil {
			t.Fatal(err)
		}
	}
	ok := secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
	mk("00000000-0000-4000-8000-000000000001", "prod", 1, ok)
	mk("00000000-0000-4000-8000-000000000002", "prod", 2, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	mk("00000000-0000-4000-8000-000000000003", "dev", 1, ok)
	mk("00000000-0000-4000-8000-000000000004", "prod", 9, ok)
	if err := s.SaveResult(ctx, "00000000-0000-4000-8000-000000000001", nil, &secureauditv1.Report{Cluster: "prod"}, map[secureauditv1.ReportFormat][]byte{secureauditv1.ReportFormat_REPORT_FORMAT_JSON: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneAudits(ctx, "prod", time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("pruned %d audits, want 1 (finished, prod, older)", n)
	}
	if _, err := s.GetAudit(ctx, "00000000-0000-4000-8000-000000000001"); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned audit still there: %v", err)
	}
	if _, err := s.Report(ctx, "00000000-0000-4000-8000-000000000001", secureauditv1.ReportFormat_REPORT_FORMAT_JSON); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned audit's report still there: %v", err)
	}
	if _, err := s.ReportInput(ctx, "00000000-0000-4000-8000-000000000001"); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned audit's report input still there: %v", err)
	}
	var digests int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_digests WHERE audit_id = ?`, "00000000-0000-4000-8000-000000000001").Scan(&digests); err != nil || digests != 0 {
		t.Errorf("pruned audit's fleet digest still there: %d, %v", digests, err)
	}
	for _, id := range []string{"00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"} {
		if _, err := s.GetAudit(ctx, id); err != nil {
			t.Errorf("audit %s was pruned: %v", id, err)
		}
	}
}
