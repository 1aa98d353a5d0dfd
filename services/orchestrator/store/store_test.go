package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

func audit(i int, state secureauditv1.AuditState) *secureauditv1.Audit {
	return &secureauditv1.Audit{
		Id:        fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		State:     state,
		CreatedAt: timestamppb.New(time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC)),
	}
}

func TestAuditsRoundTripAndPaging(t *testing.T) { storagetest.Run(t, testAuditsRoundTripAndPaging) }

func testAuditsRoundTripAndPaging(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	var want []*secureauditv1.Audit
	for i := 1; i <= 7; i++ {
		a := audit(i, secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED)
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		want = append([]*secureauditv1.Audit{a}, want...) // newest first
	}
	var got []*secureauditv1.Audit
	token := ""
	pages := 0
	for {
		page, next, err := s.ListAudits(ctx, 3, token)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
		if next == "" {
			break
		}
		token = next
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}
	if _, _, err := s.ListAudits(ctx, 3, "garbage!"); !errors.Is(err, ErrBadPageToken) {
		t.Errorf("bad token: err = %v", err)
	}
}

func TestUpdateGetAndUnfinished(t *testing.T) { storagetest.Run(t, testUpdateGetAndUnfinished) }

func testUpdateGetAndUnfinished(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	running := audit(1, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	done := audit(2, secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED)
	for _, a := range []*secureauditv1.Audit{running, done} {
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	left, err := s.Unfinished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].GetId() != running.GetId() {
		t.Fatalf("unfinished = %v", left)
	}
	running.State = secureauditv1.AuditState_AUDIT_STATE_FAILED
	running.Error = "boom"
	if err := s.UpdateAudit(ctx, running); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAudit(ctx, running.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(running, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := s.GetAudit(ctx, "00000000-0000-4000-8000-999999999999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown audit: err = %v", err)
	}
	if err := s.UpdateAudit(ctx, audit(99, secureauditv1.AuditState_AUDIT_STATE_FAILED)); !errors.Is(err, ErrNotFound) {
		t.Errorf("update unknown audit: err = %v", err)
	}
	// A finished audit is never written again.
	running.State = secureauditv1.AuditState_AUDIT_STATE_RUNNING
	if err := s.UpdateAudit(ctx, running); !errors.Is(err, ErrFinished) {
		t.Errorf("update of a failed audit: err = %v, want ErrFinished", err)
	}
	if got, _ := s.GetAudit(ctx, running.GetId()); got.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED {
		t.Errorf("failed audit now %s", got.GetState())
	}
}

func TestResultsAndEvents(t *testing.T) { storagetest.Run(t, testResultsAndEvents) }

func testResultsAndEvents(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	a := audit(1, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	findings := []*secureauditv1.Finding{
		{Id: "0123456789abcdef", RuleId: "RBAC-001", Severity: secureauditv1.Severity_SEVERITY_CRITICAL},
		{Id: "fedcba9876543210", RuleId: "RBAC-010", Severity: secureauditv1.Severity_SEVERITY_LOW},
	}
	reports := map[secureauditv1.ReportFormat][]byte{secureauditv1.ReportFormat_REPORT_FORMAT_JSON: []byte(`{"findings":[]}`)}
	input := &secureauditv1.Report{AuditId: a.GetId(), Cluster: "prod", DirectoryPartial: true,
		DirectoryErrors: []*secureauditv1.LookupError{{Lookup: "group x/members", Message: "429"}}}
	if err := s.SaveResult(ctx, a.GetId(), findings, input, reports); err != nil {
		t.Fatal(err)
	}
	gotInput, err := s.ReportInput(ctx, a.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(input, gotInput, protocmp.Transform()); diff != "" {
		t.Errorf("report input (-want +got):\n%s", diff)
	}
	if _, err := s.ReportInput(ctx, "00000000-0000-4000-8000-999999999999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("report input of an unknown audit: err = %v", err)
	}
	gotFindings, err := s.Findings(ctx, a.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(findings, gotFindings, protocmp.Transform()); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	data, err := s.Report(ctx, a.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_JSON)
	if err != nil || string(data) != `{"findings":[]}` {
		t.Errorf("report = %q, %v", data, err)
	}
	if _, err := s.Report(ctx, a.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing report: err = %v", err)
	}
	// A report rendered later is stored once; a second save keeps the first.
	md := secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN
	if err := s.SaveReport(ctx, a.GetId(), md, []byte("# first")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveReport(ctx, a.GetId(), md, []byte("# second")); err != nil {
		t.Fatal(err)
	}
	if data, err := s.Report(ctx, a.GetId(), md); err != nil || string(data) != "# first" {
		t.Errorf("late report = %q, %v; want the first one saved", data, err)
	}
	for i := uint32(1); i <= 3; i++ {
		if err := s.AppendEvent(ctx, &secureauditv1.AuditEvent{AuditId: a.GetId(), Sequence: i, Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendEvent(ctx, &secureauditv1.AuditEvent{AuditId: a.GetId(), Sequence: 2}); err == nil {
		t.Error("a repeated event sequence was accepted")
	}
	events, err := s.Events(ctx, a.GetId(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].GetSequence() != 2 || events[1].GetSequence() != 3 {
		t.Errorf("events after 1 = %v", events)
	}
}

// TestManyFindings: findings written many rows per statement (a full
// statement, another, and the rest) read back whole and in order.
func TestManyFindings(t *testing.T) { storagetest.Run(t, testManyFindings) }

func testManyFindings(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	for _, n := range []int{findingsPerInsert - 1, findingsPerInsert, 2*findingsPerInsert + 7} {
		a := audit(n, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		findings := make([]*secureauditv1.Finding, n)
		for i := range findings {
			findings[i] = &secureauditv1.Finding{Id: fmt.Sprintf("%016x", n-i), RuleId: fmt.Sprintf("RBAC-%03d", i%50),
				Severity: secureauditv1.Severity(1 + i%5), Title: strings.Repeat("t", i%17)}
		}
		if err := s.SaveResult(ctx, a.GetId(), findings, nil, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.Findings(ctx, a.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(findings, got, protocmp.Transform()); diff != "" {
			t.Errorf("%d findings (-want +got):\n%s", n, diff)
		}
	}
}

func TestReportChunks(t *testing.T) { storagetest.Run(t, testReportChunks) }

// testReportChunks: a document stored chunk by chunk is served only once
// recorded whole, read back in order one chunk at a time, kept against a
// second store, and a missing chunk is an error naming it.
func testReportChunks(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	a := audit(1, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	html := secureauditv1.ReportFormat_REPORT_FORMAT_HTML
	parts := []string{"<html>", "", "<body>\x00binary\xff", "</html>\n"}
	for i, p := range parts {
		if err := s.SaveReportChunk(ctx, a.GetId(), html, i, []byte(p)); err != nil {
			t.Fatal(err)
		}
		if i < len(parts)-1 {
			if _, err := s.Report(ctx, a.GetId(), html); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after chunk %d of %d: err = %v, want ErrNotFound", i, len(parts), err)
			}
		}
	}
	if err := s.FinishReport(ctx, a.GetId(), html, len(parts)); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.ReadReport(ctx, a.GetId(), html, func(b []byte) error { got = append(got, string(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parts, got); diff != "" {
		t.Errorf("chunks read (-want +got):\n%s", diff)
	}
	// A concurrent render of the same document stores the same chunks; the
	// first stored are kept.
	if err := s.SaveReportChunk(ctx, a.GetId(), html, 0, []byte("<other>")); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishReport(ctx, a.GetId(), html, 1); err != nil {
		t.Fatal(err)
	}
	if data, err := s.Report(ctx, a.GetId(), html); err != nil || string(data) != strings.Join(parts, "") {
		t.Errorf("report = %q, %v", data, err)
	}
	// A reader's error stops the read and comes back as is.
	stop := errors.New("client gone")
	if err := s.ReadReport(ctx, a.GetId(), html, func([]byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("read stopped by its reader: err = %v", err)
	}
	// A document recorded with more chunks than are stored is refused.
	csv := secureauditv1.ReportFormat_REPORT_FORMAT_CSV
	if err := s.SaveReportChunk(ctx, a.GetId(), csv, 0, []byte("a,b\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishReport(ctx, a.GetId(), csv, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Report(ctx, a.GetId(), csv); err == nil || !strings.Contains(err.Error(), "chunk 1 of 2 is missing") {
		t.Errorf("report with a missing chunk: err = %v", err)
	}
	if err := s.FinishReport(ctx, a.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, 0); err == nil {
		t.Error("a document of no chunks was recorded")
	}
}
