package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
)

// following is a report-agent that reads a report_follows rendering: it
// tells arrived each time a batch of findings arrives, records the report
// that ends them, and answers with one document; with refuse set it ends
// the call with that status once the header arrived; with hang set it
// reads nothing after the header until the call ends.
type following struct {
	secureauditv1.UnimplementedReportServiceServer
	arrived chan int
	end     chan *secureauditv1.RenderReport
	refuse  error
	hang    bool
}

func (s *following) Render(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if !req.GetHeader().GetReportFollows() || req.GetHeader().GetReport() != nil {
		return status.Error(codes.InvalidArgument, "want a header that says report_follows, without the report")
	}
	if s.refuse != nil {
		return s.refuse
	}
	if s.hang {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if end := req.GetReport(); end != nil {
			s.end <- end
			break
		}
		s.arrived <- len(req.GetFindings().GetFindings())
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return errors.New("no end of the request after the report")
	}
	return stream.Send(&secureauditv1.RenderResponse{Format: secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, Data: []byte("# r"), Last: true})
}

func relayFindings(n int) []*secureauditv1.Finding {
	out := make([]*secureauditv1.Finding, n)
	for i := range out {
		out[i] = &secureauditv1.Finding{Id: fmt.Sprintf("%016x", i), RuleId: "RBAC-001", Title: "t", Severity: secureauditv1.Severity_SEVERITY_HIGH,
			SeverityReason: "base", Remediation: "remove the binding", Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}}
	}
	return out
}

func relayClient(t *testing.T, agent secureauditv1.ReportServiceServer) secureauditv1.ReportServiceClient {
	t.Helper()
	p := rpctest.NewPKI(t)
	manifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Serve(t, identity.ReportAgent, manifest, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, agent) })
	return secureauditv1.NewReportServiceClient(p.Dial(t, addr, identity.ReportAgent, identity.Orchestrator))
}

var relayReport = &secureauditv1.Report{
	AuditId: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", Cluster: "c", GeneratedAt: timestamppb.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
	Counts: &secureauditv1.ObjectCounts{}, Summary: &secureauditv1.SeverityCounts{},
}

// TestRelaySendsFindingsAsTheyArrive: each batch added reaches the
// report-agent before the next is added and before the report is known;
// the report then ends them with their number and the withheld findings,
// and the document arrives.
func TestRelaySendsFindingsAsTheyArrive(t *testing.T) {
	agent := &following{arrived: make(chan int, 16), end: make(chan *secureauditv1.RenderReport, 1)}
	md := []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN}
	rl := startFindingRelay(context.Background(), relayClient(t, agent), md, false)
	defer rl.stop()
	all := relayFindings(1200)
	for _, batch := range [][]*secureauditv1.Finding{all[:500], all[500:1000], all[1000:]} {
		rl.add(batch)
		select {
		case n := <-agent.arrived:
			if n != len(batch) {
				t.Fatalf("a batch of %d findings arrived, want %d", n, len(batch))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("a batch added did not reach the report-agent before the next one (relay: %v)", rl.stopped())
		}
	}
	var doc string
	err := rl.end(relayReport, len(all), []string{all[3].GetId()}, md, nil, func(_ secureauditv1.ReportFormat, _ int, data []byte, _ bool) error {
		doc += string(data)
		return nil
	})
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	end := <-agent.end
	if end.GetFindingCount() != 1200 || !cmp.Equal(end.GetWithheldFindingIds(), []string{all[3].GetId()}) || end.GetReport().GetAuditId() != relayReport.GetAuditId() {
		t.Errorf("the report that ends the findings: count %d, withheld %v, audit %s; want 1200, [%s], %s",
			end.GetFindingCount(), end.GetWithheldFindingIds(), end.GetReport().GetAuditId(), all[3].GetId(), relayReport.GetAuditId())
	}
	if doc != "# r" {
		t.Errorf("document %q, want %q", doc, "# r")
	}
	if rl.forwarded.Len() != 0 {
		t.Errorf("the relay still holds %d findings after they were sent", rl.forwarded.Len())
	}
}

// TestRelayErrors: a report-agent that refuses the call fails end with its
// status (after the findings were assessed, not while they arrived); one
// that stalls is given up on when the call is cancelled (the render
// stage's budget does that); a count that differs from what was added
// fails end without sending the report.
func TestRelayErrors(t *testing.T) {
	md := []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN}
	emit := func(secureauditv1.ReportFormat, int, []byte, bool) error { return nil }

	refusing := &following{refuse: status.Error(codes.ResourceExhausted, "too many renders")}
	rl := startFindingRelay(context.Background(), relayClient(t, refusing), md, false)
	rl.add(relayFindings(10))
	err := rl.end(relayReport, 10, nil, md, nil, emit)
	if status.Code(err) != codes.ResourceExhausted && !strings.Contains(fmt.Sprint(err), "too many renders") {
		t.Errorf("end with a refusing report-agent = %v, want its status", err)
	}
	rl.stop()

	hanging := &following{hang: true}
	rl = startFindingRelay(context.Background(), relayClient(t, hanging), md, false)
	// A report-agent that reads nothing never holds up the stage that
	// hands the relay its findings (20,000 of them, some 2 MB encoded,
	// past what the call's flow-control window lets through unread).
	added := make(chan struct{})
	go func() {
		for range 40 {
			rl.add(relayFindings(500))
		}
		close(added)
	}()
	select {
	case <-added:
	case <-time.After(30 * time.Second):
		t.Fatal("adding findings blocked behind a report-agent that reads nothing")
	}
	ended := make(chan error, 1)
	go func() { ended <- rl.end(relayReport, 40*500, nil, md, nil, emit) }()
	rl.cancel()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Canceled {
			t.Errorf("end with a stalled report-agent, cancelled = %v, want Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("end did not return once the call was cancelled")
	}
	rl.stop()

	agent := &following{arrived: make(chan int, 16), end: make(chan *secureauditv1.RenderReport, 1)}
	rl = startFindingRelay(context.Background(), relayClient(t, agent), md, false)
	defer rl.stop()
	rl.add(relayFindings(3))
	if err := rl.end(relayReport, 4, nil, md, nil, emit); err == nil || !strings.Contains(err.Error(), "relayed 3 findings of 4") {
		t.Errorf("end with a wrong count = %v, want it to say relayed 3 findings of 4", err)
	}
	select {
	case end := <-agent.end:
		t.Errorf("the report was sent (%v) though the count was wrong", end)
	default:
	}
}

// stopped is the relay's error once its goroutine ended, else nil.
func (rl *findingRelay) stopped() error {
	select {
	case <-rl.done:
		return rl.err
	default:
		return nil
	}
}
