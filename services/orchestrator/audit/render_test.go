package audit

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
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
