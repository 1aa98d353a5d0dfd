package audit

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
)

// scripted is a report-agent that reads the request to its end and answers
// with the given chunks, as the report-agent sends documents one after
// another in chunks.
type scripted struct {
	secureauditv1.UnimplementedReportServiceServer
	chunks []*secureauditv1.RenderResponse
}

func (s *scripted) Render(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) error {
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
	}
	for _, c := range s.chunks {
		if err := stream.Send(c); err != nil {
			return err
		}
	}
	return nil
}

// TestRenderEachEmitsWholeDocumentsOneAtATime: each document reaches emit
// whole, once, in the order the report-agent finished them; an emit error
// stops the render with that error, and a document without its last chunk
// fails it after the whole ones were emitted.
func TestRenderEachEmitsWholeDocumentsOneAtATime(t *testing.T) {
	md := secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN
	js := secureauditv1.ReportFormat_REPORT_FORMAT_JSON
	chunk := func(f secureauditv1.ReportFormat, data string, last bool) *secureauditv1.RenderResponse {
		return &secureauditv1.RenderResponse{Format: f, Data: []byte(data), Last: last}
	}
	tests := []struct {
		name    string
		chunks  []*secureauditv1.RenderResponse
		failOn  secureauditv1.ReportFormat
		want    []string
		wantErr string
	}{
		{
			name:   "two documents in chunks",
			chunks: []*secureauditv1.RenderResponse{chunk(md, "# a", false), chunk(md, "b", true), chunk(js, "{}", true)},
			want:   []string{"REPORT_FORMAT_MARKDOWN:# ab", "REPORT_FORMAT_JSON:{}"},
		},
		{
			name:    "emit fails",
			chunks:  []*secureauditv1.RenderResponse{chunk(md, "# a", true), chunk(js, "{}", true)},
			failOn:  md,
			want:    []string{"REPORT_FORMAT_MARKDOWN:# a"},
			wantErr: "disk full",
		},
		{
			name:    "document without its last chunk",
			chunks:  []*secureauditv1.RenderResponse{chunk(md, "# a", true), chunk(js, "{", false)},
			want:    []string{"REPORT_FORMAT_MARKDOWN:# a"},
			wantErr: "REPORT_FORMAT_JSON document incomplete",
		},
	}
	report := &secureauditv1.Report{
		AuditId: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", Cluster: "c", GeneratedAt: timestamppb.Now(),
		Counts: &secureauditv1.ObjectCounts{}, Summary: &secureauditv1.SeverityCounts{},
	}
	p := rpctest.NewPKI(t)
	manifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := &scripted{chunks: tt.chunks}
			addr := p.Serve(t, identity.ReportAgent, manifest, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, agent) })
			client := secureauditv1.NewReportServiceClient(p.Dial(t, addr, identity.ReportAgent, identity.Orchestrator))
			var got []string
			parts := map[secureauditv1.ReportFormat]string{}
			seen := map[secureauditv1.ReportFormat]int{}
			err := renderEach(context.Background(), client, report, nil, nil, []secureauditv1.ReportFormat{md, js}, nil,
				func(f secureauditv1.ReportFormat, seq int, data []byte, last bool) error {
					if seq != seen[f] {
						t.Errorf("%s chunk numbered %d, want %d", f, seq, seen[f])
					}
					seen[f]++
					parts[f] += string(data)
					if !last {
						return nil
					}
					got = append(got, f.String()+":"+parts[f])
					if f == tt.failOn {
						return errors.New("disk full")
					}
					return nil
				})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("emitted (-want +got):\n%s", diff)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("render: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("render error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// answering is a report-agent that reads the header and the findings it
// announces, answers with first (the report's actions, or a chunk out of
// turn), reads the review state into review, then sends one document.
type answering struct {
	secureauditv1.UnimplementedReportServiceServer
	first  *secureauditv1.RenderResponse
	review chan *secureauditv1.ReviewState
}

func (s *answering) Render(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	for want, got := int(req.GetHeader().GetFindingCount()), 0; got < want; {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		got += len(req.GetFindings().GetFindings())
	}
	if err := stream.Send(s.first); err != nil {
		return err
	}
	req, err = stream.Recv()
	if err != nil {
		return err
	}
	s.review <- req.GetReview()
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return errors.New("no end of the request after the review state")
	}
	return stream.Send(&secureauditv1.RenderResponse{Format: secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, Data: []byte("# r"), Last: true})
}

// TestRenderEachActions: with actions set, the header asks for them; the
// report-agent's actions reach the callback before any document, and the
// review state it returns reaches the report-agent; a callback error fails
// the render before any document, as does a chunk sent before the actions.
func TestRenderEachActions(t *testing.T) {
	md := secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN
	report := &secureauditv1.Report{
		AuditId: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", Cluster: "c", GeneratedAt: timestamppb.Now(),
		Counts: &secureauditv1.ObjectCounts{}, Summary: &secureauditv1.SeverityCounts{},
	}
	findings := []*secureauditv1.Finding{{Id: "00000000000000a1", RuleId: "RBAC-001", Title: "t", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
		SeverityReason: "base", Remediation: "Remove it.", Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "dave"}}}
	actions := &secureauditv1.RenderResponse{Actions: &secureauditv1.RenderActions{RevokeFindingIds: []string{"00000000000000a1"}}}
	state := &secureauditv1.ReviewState{Campaigns: []*secureauditv1.ReviewCampaign{{AuditId: report.GetAuditId(), Cluster: "c", RevokeActions: 1}}}
	p := rpctest.NewPKI(t)
	manifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		first    *secureauditv1.RenderResponse
		fail     error
		wantDocs int
		wantErr  string
	}{
		{name: "actions, then the document", first: actions, wantDocs: 1},
		{name: "tracking fails", first: actions, fail: errors.New("database is locked"), wantErr: "database is locked"},
		{name: "a chunk before the actions", first: &secureauditv1.RenderResponse{Format: md, Data: []byte("#"), Last: true}, wantErr: "REPORT_FORMAT_MARKDOWN chunk before the report's actions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := &answering{first: tt.first, review: make(chan *secureauditv1.ReviewState, 1)}
			addr := p.Serve(t, identity.ReportAgent, manifest, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, agent) })
			client := secureauditv1.NewReportServiceClient(p.Dial(t, addr, identity.ReportAgent, identity.Orchestrator))
			var named []string
			docs := 0
			err := renderEach(context.Background(), client, report, findings, nil, []secureauditv1.ReportFormat{md},
				func(a *secureauditv1.RenderActions) (*secureauditv1.ReviewState, error) {
					if docs != 0 {
						t.Error("the actions arrived after a document")
					}
					named = a.GetRevokeFindingIds()
					return state, tt.fail
				},
				func(secureauditv1.ReportFormat, int, []byte, bool) error { docs++; return nil })
			if docs != tt.wantDocs {
				t.Errorf("%d documents, want %d", docs, tt.wantDocs)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				if !cmp.Equal(named, []string{"00000000000000a1"}) {
					t.Errorf("actions named %v", named)
				}
				if got := <-agent.review; !cmp.Equal(got, state, protocmp.Transform()) {
					t.Errorf("the report-agent received the review state %v, want %v", got, state)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("render error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
