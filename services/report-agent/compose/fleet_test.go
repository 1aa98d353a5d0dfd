package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
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
	stream, err := client.RenderFleet(ctx, req) //nolint:staticcheck // RenderFleet is deprecated and still served
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

// renderFleetStream sends msgs on RenderFleetStream, closes its side and
// joins each document's chunks, failing the test when the framing breaks.
func renderFleetStream(t *testing.T, client secureauditv1.ReportServiceClient, msgs []*secureauditv1.RenderFleetStreamRequest) (map[secureauditv1.ReportFormat][]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := client.RenderFleetStream(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream: Recv has its status
			}
			return nil, err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	docs := map[secureauditv1.ReportFormat][]byte{}
	var current secureauditv1.ReportFormat
	open := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if open && resp.GetFormat() != current {
			t.Fatalf("chunk of %v inside the %v document", resp.GetFormat(), current)
		}
		current = resp.GetFormat()
		docs[current] = append(docs[current], resp.GetData()...)
		open = !resp.GetLast()
	}
	if open {
		t.Fatal("stream ended without last on the final chunk")
	}
	return docs, nil
}

// inBatches is the RenderFleetStream input of f: the header, then its
// clusters in batches of at most n.
func inBatches(f *secureauditv1.FleetReport, formats []secureauditv1.ReportFormat, n int) []*secureauditv1.RenderFleetStreamRequest {
	head := proto.Clone(f).(*secureauditv1.FleetReport)
	head.Clusters = nil
	out := []*secureauditv1.RenderFleetStreamRequest{{Part: &secureauditv1.RenderFleetStreamRequest_Header{Header: &secureauditv1.RenderFleetHeader{
		Fleet: head, Formats: formats, ClusterCount: uint32(len(f.GetClusters())),
	}}}}
	for start := 0; start < len(f.GetClusters()); start += n {
		out = append(out, &secureauditv1.RenderFleetStreamRequest{Part: &secureauditv1.RenderFleetStreamRequest_Clusters{Clusters: &secureauditv1.FleetClusterBatch{
			Clusters: f.GetClusters()[start:min(start+n, len(f.GetClusters()))],
		}}})
	}
	return out
}

// largeFleet is a fleet of n clusters, each with 32 long labels and a
// trend of 50 audits (every fifth failed with a long error): about 16 KB a
// cluster.
func largeFleet(n int) *secureauditv1.FleetReport {
	f := fleet()
	f.Selector, f.Clusters, f.TrendAudits = nil, nil, 50
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		c := &secureauditv1.FleetCluster{Name: fmt.Sprintf("aks-%05d", i), Labels: map[string]string{}}
		for k := range 32 {
			c.Labels[fmt.Sprintf("label-%02d", k)] = strings.Repeat(string(rune('a'+k%26)), 200)
		}
		for j := range 50 {
			a := &secureauditv1.FleetAudit{Id: fmt.Sprintf("00000000-0000-4000-8000-%06d%06d", i, j), State: "AUDIT_STATE_SUCCEEDED",
				CreatedAt: timestamppb.New(start.Add(time.Duration(j) * time.Hour)), Summary: &secureauditv1.SeverityCounts{Critical: uint32(j % 7), High: uint32(i % 11), Medium: 3}}
			if j%5 == 4 {
				a.State, a.Summary, a.Error = "AUDIT_STATE_FAILED", nil, strings.Repeat("collect: unavailable; ", 20)
				c.FailedAudits++
				c.LastFailed = a
			} else {
				c.LastSucceeded = a
			}
			c.Trend = append(c.Trend, a)
		}
		c.LastAudit = c.Trend[len(c.Trend)-1]
		f.Clusters = append(f.Clusters, c)
	}
	return f
}

// TestRenderFleetStream calls RenderFleetStream over loopback mTLS: a small
// fleet in one batch gives byte for byte the documents of RenderFleet (the
// whole fleet in one message) and of the render package; a fleet larger
// than a message may carry, which RenderFleet cannot take, arrives in
// batches and renders whole, the same Markdown as render.WriteFleet of the
// whole fleet. The input's framing is checked (header first and once, the
// announced number of clusters, the contract's bounds on each message), and
// no other workload may call.
func TestRenderFleetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	html := secureauditv1.ReportFormat_REPORT_FORMAT_HTML
	both := []secureauditv1.ReportFormat{markdown, html}

	streamed, err := renderFleetStream(t, client, inBatches(fleet(), both, 500))
	if err != nil {
		t.Fatalf("RenderFleetStream: %v", err)
	}
	whole, _, err := renderFleet(t, client, &secureauditv1.RenderFleetRequest{Fleet: fleet(), Formats: both})
	if err != nil {
		t.Fatalf("RenderFleet: %v", err)
	}
	for _, f := range both {
		if len(streamed[f]) == 0 || !bytes.Equal(streamed[f], whole[f]) {
			t.Errorf("%v: RenderFleetStream's document differs from RenderFleet's (%d bytes, want %d)", f, len(streamed[f]), len(whole[f]))
		}
	}

	// Over one message: RenderFleet refuses it, RenderFleetStream renders it.
	big := largeFleet(1100)
	if size := proto.Size(&secureauditv1.RenderFleetRequest{Fleet: big, Formats: both}); size <= rpc.MaxMessageSize {
		t.Fatalf("the large fleet is %d bytes, not over the %d of a message", size, rpc.MaxMessageSize)
	}
	if _, _, err := renderFleet(t, client, &secureauditv1.RenderFleetRequest{Fleet: big, Formats: []secureauditv1.ReportFormat{markdown}}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("RenderFleet of a fleet over one message: %v, want ResourceExhausted", err)
	}
	msgs := inBatches(big, []secureauditv1.ReportFormat{markdown}, 300)
	for i, m := range msgs {
		if size := proto.Size(m); size > rpc.MaxMessageSize {
			t.Fatalf("message %d is %d bytes", i, size)
		}
	}
	docs, err := renderFleetStream(t, client, msgs)
	if err != nil {
		t.Fatalf("RenderFleetStream of %d clusters in %d batches: %v", len(big.GetClusters()), len(msgs)-1, err)
	}
	var want bytes.Buffer
	if err := render.WriteFleet(&want, markdown, big); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs[markdown], want.Bytes()) {
		t.Errorf("Markdown of the large fleet in batches differs from render.WriteFleet (%d bytes, want %d)", len(docs[markdown]), want.Len())
	}
	if !bytes.Contains(docs[markdown], []byte("### aks-01099")) {
		t.Errorf("Markdown of the large fleet lacks its last cluster")
	}

	// The framing and the contract.
	three := largeFleet(3)
	md := []secureauditv1.ReportFormat{markdown}
	withCount := func(msgs []*secureauditv1.RenderFleetStreamRequest, n uint32) []*secureauditv1.RenderFleetStreamRequest {
		msgs[0].GetHeader().ClusterCount = n
		return msgs
	}
	withClusters := inBatches(three, md, 2)
	withClusters[0].GetHeader().GetFleet().Clusters = three.GetClusters()[:1]
	overBatch := largeFleet(501)
	for _, tc := range []struct {
		name string
		msgs []*secureauditv1.RenderFleetStreamRequest
		want string
	}{
		{"fewer clusters than announced", withCount(inBatches(three, md, 2), 4), "expected 4 clusters, received 3"},
		{"more clusters than announced", withCount(inBatches(three, md, 2), 2), "expected 2 clusters, received more"},
		{"a batch first", inBatches(three, md, 2)[1:], "the first message must be the fleet report's header"},
		{"the header twice", append(inBatches(three, md, 2), inBatches(three, md, 2)[0]), "the fleet report's header was sent twice"},
		{"nothing", nil, "the stream ended before the fleet report's header"},
		{"JSON", inBatches(three, []secureauditv1.ReportFormat{jsonDoc}, 2), ""},
		{"clusters in the header", withClusters, "clusters travel in batches after the header"},
		{"a batch over 500 clusters", inBatches(overBatch, md, 501), ""},
		{"an empty batch", append(inBatches(three, md, 3), &secureauditv1.RenderFleetStreamRequest{Part: &secureauditv1.RenderFleetStreamRequest_Clusters{Clusters: &secureauditv1.FleetClusterBatch{}}}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderFleetStream(t, client, tc.msgs)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("%v, want InvalidArgument %q", err, tc.want)
			}
		})
	}

	if _, err := renderFleetStream(t, newClient(t, identity.RiskAgent), inBatches(fleet(), md, 1)); status.Code(err) != codes.PermissionDenied {
		t.Errorf("RenderFleetStream called by the risk-agent: %v, want PermissionDenied", err)
	}
}
