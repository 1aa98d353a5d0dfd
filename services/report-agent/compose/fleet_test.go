package compose

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/services/report-agent/render"
)

func fleet() *secureauditv1.FleetReport {
	at := timestamppb.New(time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC))
	a := &secureauditv1.FleetAudit{Id: "00000000-0000-4000-8000-000000000001", State: "AUDIT_STATE_SUCCEEDED", CreatedAt: at, Summary: &secureauditv1.SeverityCounts{Critical: 2, High: 1}}
	return &secureauditv1.FleetReport{
		GeneratedAt: at, Totals: &secureauditv1.SeverityCounts{Critical: 2, High: 1}, TrendAudits: 10,
		Selector: map[string]string{"environment": "prod"},
		Clusters: []*secureauditv1.FleetCluster{{Name: "aks-east", Labels: map[string]string{"environment": "prod"}, LastAudit: a, LastSucceeded: a, Trend: []*secureauditv1.FleetAudit{a}}},
	}
}

// renderFleet calls RenderFleet and joins each document's chunks, failing
// the test when the framing breaks.
func renderFleet(t *testing.T, client secureauditv1.ReportServiceClient, req *secureauditv1.RenderFleetRequest) (map[secureauditv1.ReportFormat][]byte, []secureauditv1.ReportFormat, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.RenderFleet(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	docs := map[secureauditv1.ReportFormat][]byte{}
	var order []secureauditv1.ReportFormat
	open := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if !open {
			order = append(order, resp.GetFormat())
			open = true
		} else if resp.GetFormat() != order[len(order)-1] {
			t.Fatalf("chunk of %v inside the %v document", resp.GetFormat(), order[len(order)-1])
		}
		docs[resp.GetFormat()] = append(docs[resp.GetFormat()], resp.GetData()...)
		open = !resp.GetLast()
	}
	if open {
		t.Fatal("stream ended without last on the final chunk")
	}
	return docs, order, nil
}

// TestRenderFleet calls RenderFleet over loopback mTLS: the orchestrator
// receives the fleet report in Markdown and HTML, byte for byte what the
// render package writes, in request order; a format the fleet report does
// not have is refused by the contract, and no other workload may call.
func TestRenderFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	html := secureauditv1.ReportFormat_REPORT_FORMAT_HTML
	docs, order, err := renderFleet(t, client, &secureauditv1.RenderFleetRequest{Fleet: fleet(), Formats: []secureauditv1.ReportFormat{html, markdown}})
	if err != nil {
		t.Fatalf("RenderFleet: %v", err)
	}
	if len(order) != 2 || order[0] != html || order[1] != markdown {
		t.Fatalf("documents %v, want HTML then Markdown", order)
	}
	for _, f := range order {
		var want bytes.Buffer
		if err := render.WriteFleet(&want, f, fleet()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(docs[f], want.Bytes()) {
			t.Errorf("%v document differs from render.WriteFleet (%d bytes, want %d)", f, len(docs[f]), want.Len())
		}
	}
	if !bytes.Contains(docs[markdown], []byte("for clusters labelled environment=prod: 1 cluster.")) {
		t.Errorf("Markdown does not name the label filter:\n%s", docs[markdown])
	}

	_, _, err = renderFleet(t, client, &secureauditv1.RenderFleetRequest{Fleet: fleet(), Formats: []secureauditv1.ReportFormat{jsonDoc}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("RenderFleet as JSON: %v, want InvalidArgument", err)
	}
	_, _, err = renderFleet(t, newClient(t, identity.RiskAgent), &secureauditv1.RenderFleetRequest{Fleet: fleet(), Formats: []secureauditv1.ReportFormat{markdown}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("RenderFleet called by the risk-agent: %v, want PermissionDenied", err)
	}
}
