package audit

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/store"
)

// findingRisk is a risk-agent that reads the whole request, then streams
// its findings in batches of 500 and a summary counting them.
type findingRisk struct {
	secureauditv1.UnimplementedRiskServiceServer
	findings []*secureauditv1.Finding
}

func (s *findingRisk) Assess(stream grpc.BidiStreamingServer[secureauditv1.AssessRequest, secureauditv1.AssessResponse]) error {
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
	}
	for start := 0; start < len(s.findings); start += 500 {
		batch := &secureauditv1.FindingBatch{Findings: s.findings[start:min(start+500, len(s.findings))]}
		if err := stream.Send(&secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Findings{Findings: batch}}); err != nil {
			return err
		}
	}
	return stream.Send(&secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Summary{Summary: &secureauditv1.AssessSummary{
		FindingCount: uint32(len(s.findings)), CatalogueVersion: "test", ReasoningProvider: "none", Counts: &secureauditv1.ObjectCounts{ClusterRoleBindings: 1},
	}}})
}

// headerOnlyReport is a report-agent from before report_follows: it refuses
// a header without its report (as its validation did), and renders a
// header's report with the findings announced, recording what it received.
type headerOnlyReport struct {
	secureauditv1.UnimplementedReportServiceServer
	mu       sync.Mutex
	refused  int
	rendered []int // findings received by each rendering
}

func (s *headerOnlyReport) Render(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	h := req.GetHeader()
	if h.GetReport() == nil {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "invalid request: header.report: value is required")
	}
	got := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		got += len(req.GetFindings().GetFindings())
	}
	s.mu.Lock()
	s.rendered = append(s.rendered, got)
	s.mu.Unlock()
	if got != int(h.GetFindingCount()) {
		return status.Errorf(codes.InvalidArgument, "expected %d findings, received %d", h.GetFindingCount(), got)
	}
	for _, f := range h.GetFormats() {
		if err := stream.Send(&secureauditv1.RenderResponse{Format: f, Data: []byte("# r"), Last: true}); err != nil {
			return err
		}
	}
	return nil
}

// TestRelayFallsBackToRenderingFromTheStore: when the report-agent's call
// ends while the findings are relayed (here a report-agent that predates
// report_follows refuses the header; a restarted one ends the call alike),
// the audit renders the stored findings in a call of its own, says so in
// its events, and succeeds with every finding rendered.
func TestRelayFallsBackToRenderingFromTheStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := rpctest.NewPKI(t)
	manifest := func(w string) []byte { return manifestOf(t, w) }
	rbacAddr := p.Serve(t, identity.RBACAgent, manifest(identity.RBACAgent), func(s *grpc.Server) {
		secureauditv1.RegisterRBACServiceServer(s, &bindingAgent{cluster: "aks-test"})
	})
	risk := &findingRisk{findings: relayFindings(1200)}
	riskAddr := p.Serve(t, identity.RiskAgent, manifest(identity.RiskAgent), func(s *grpc.Server) { secureauditv1.RegisterRiskServiceServer(s, risk) })
	report := &headerOnlyReport{}
	reportAddr := p.Serve(t, identity.ReportAgent, manifest(identity.ReportAgent), func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, report) })

	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), rpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := store.New(db)
	agents := Agents{
		RBAC:   secureauditv1.NewRBACServiceClient(p.Dial(t, rbacAddr, identity.RBACAgent, identity.Orchestrator)),
		Risk:   secureauditv1.NewRiskServiceClient(p.Dial(t, riskAddr, identity.RiskAgent, identity.Orchestrator)),
		Report: secureauditv1.NewReportServiceClient(p.Dial(t, reportAddr, identity.ReportAgent, identity.Orchestrator)),
	}
	r := NewRunner(agents, st, rpctest.Logger(t), noop.NewTracerProvider().Tracer("test"))
	svc := NewService(r, st, rpctest.Logger(t))
	done := make(chan struct{})
	go func() { r.Run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()

	md := secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN
	resp, err := svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{SkipDirectory: true, Formats: []secureauditv1.ReportFormat{md}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetAudit().GetId()
	var a *secureauditv1.Audit
	for deadline := time.Now().Add(time.Minute); ; {
		if a, err = st.GetAudit(ctx, id); err != nil {
			t.Fatal(err)
		}
		if terminal(a.GetState()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit still %s after a minute", a.GetState())
		}
		select {
		case <-r.changed(id):
		case <-time.After(50 * time.Millisecond):
		}
	}
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Fatalf("audit %s: %s, want it to succeed by rendering from the store", a.GetState(), a.GetError())
	}
	report.mu.Lock()
	refused, rendered := report.refused, report.rendered
	report.mu.Unlock()
	if refused != 1 || len(rendered) != 1 || rendered[0] != 1200 {
		t.Errorf("report-agent refused %d relayed calls and rendered %v findings; want 1 refused, then [1200]", refused, rendered)
	}
	events, err := st.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	said := false
	for _, e := range events {
		said = said || strings.Contains(e.GetMessage(), "rendering from the stored findings")
	}
	if !said {
		t.Error("no event says the findings were rendered from the store")
	}
	var doc []byte
	if err := st.ReadReport(ctx, id, md, func(b []byte) error { doc = append(doc, b...); return nil }); err != nil || string(doc) != "# r" {
		t.Errorf("stored report %q, %v; want %q", doc, err, "# r")
	}
}

// manifestOf is the scope manifest of workload w.
func manifestOf(t *testing.T, w string) []byte {
	t.Helper()
	m, err := scopes.Manifest(w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
