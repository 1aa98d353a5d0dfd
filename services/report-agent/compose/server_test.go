package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/report-agent/render"
)

const (
	markdown = secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN
	jsonDoc  = secureauditv1.ReportFormat_REPORT_FORMAT_JSON
)

func TestChunks(t *testing.T) {
	tests := []struct {
		name string
		size int
		want int
	}{
		{"empty", 0, 1},
		{"one byte", 1, 1},
		{"exactly one chunk", MaxChunk, 1},
		{"one byte over", MaxChunk + 1, 2},
		{"two and a half chunks", MaxChunk*5/2 + 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := make([]byte, tt.size)
			for i := range doc {
				doc[i] = byte(i % 251)
			}
			var got []*secureauditv1.RenderResponse
			w := &chunkWriter{format: jsonDoc, send: func(r *secureauditv1.RenderResponse) error {
				// The writer reuses its buffer once Send returns, as gRPC allows.
				got = append(got, proto.Clone(r).(*secureauditv1.RenderResponse))
				return nil
			}}
			// Written in uneven pieces, as a renderer writes.
			for rest := doc; len(rest) > 0; {
				n := min(len(rest), 7919)
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("%d chunks, want %d", len(got), tt.want)
			}
			var joined []byte
			for i, c := range got {
				if len(c.GetData()) > MaxChunk {
					t.Errorf("chunk %d holds %d bytes, more than %d", i, len(c.GetData()), MaxChunk)
				}
				if c.GetLast() != (i == len(got)-1) {
					t.Errorf("chunk %d: last = %v", i, c.GetLast())
				}
				if c.GetFormat() != jsonDoc {
					t.Errorf("chunk %d: format = %v", i, c.GetFormat())
				}
				joined = append(joined, c.GetData()...)
			}
			if !bytes.Equal(joined, doc) {
				t.Error("chunks do not reassemble into the document")
			}
		})
	}
}

func finding(n int, infra bool, description string) *secureauditv1.Finding {
	sev := []secureauditv1.Severity{
		secureauditv1.Severity_SEVERITY_CRITICAL,
		secureauditv1.Severity_SEVERITY_HIGH,
		secureauditv1.Severity_SEVERITY_LOW,
	}[n%3]
	return &secureauditv1.Finding{
		Id:             fmt.Sprintf("%016x", n),
		RuleId:         "CIS-001",
		Title:          fmt.Sprintf("finding %d", n),
		Severity:       sev,
		SeverityReason: "base",
		Subject:        &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: fmt.Sprintf("user-%d", n)},
		Binding:        &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "evil|name](http://x)<img>"},
		Role:           &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
		Scope:          &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		MatchedRules:   []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, ApiGroups: []string{""}, Resources: []string{"*"}}},
		Controls:       []string{"CIS-5.1.1", "SOC2-CC6.3"},
		Remediation:    "kubectl delete clusterrolebinding x",
		Description:    description,
		Infrastructure: infra,
	}
}

func header(count int, formats ...secureauditv1.ReportFormat) *secureauditv1.RenderHeader {
	return &secureauditv1.RenderHeader{
		Report: &secureauditv1.Report{
			AuditId:     "8f14e45f-ceea-4e6b-9c3a-2d1f0b7a5c11",
			Cluster:     "aks-test",
			GeneratedAt: timestamppb.New(time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)),
			Source:      secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE,
			Counts:      &secureauditv1.ObjectCounts{Namespaces: 2},
			Summary:     &secureauditv1.SeverityCounts{Critical: 1},
		},
		Formats:      formats,
		FindingCount: uint32(count),
	}
}

func headerMsg(h *secureauditv1.RenderHeader) *secureauditv1.RenderRequest {
	return &secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Header{Header: h}}
}

func batchMsg(fs ...*secureauditv1.Finding) *secureauditv1.RenderRequest {
	return &secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Findings{Findings: &secureauditv1.FindingBatch{Findings: fs}}}
}

// document is one document as received: its format, bytes and chunk count.
type document struct {
	format secureauditv1.ReportFormat
	data   []byte
	chunks int
}

// call sends msgs, closes the sending side and collects the documents. It
// fails the test when a chunk breaks the framing (a format change before last).
func call(t *testing.T, client secureauditv1.ReportServiceClient, msgs ...*secureauditv1.RenderRequest) ([]document, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.Render(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the call; Recv returns its status
			}
			return nil, err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	var docs []document
	open := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, err
		}
		if !open {
			docs = append(docs, document{format: resp.GetFormat()})
			open = true
		}
		d := &docs[len(docs)-1]
		if d.format != resp.GetFormat() {
			t.Fatalf("chunk of %v inside the %v document", resp.GetFormat(), d.format)
		}
		d.data = append(d.data, resp.GetData()...)
		d.chunks++
		open = !resp.GetLast()
	}
	if open {
		t.Fatal("stream ended without last on the final chunk")
	}
	return docs, nil
}

func newClient(t *testing.T, caller string) secureauditv1.ReportServiceClient {
	t.Helper()
	manifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	p := rpctest.NewPKI(t)
	addr := p.Serve(t, identity.ReportAgent, manifest, func(s *grpc.Server) {
		secureauditv1.RegisterReportServiceServer(s, NewServer(rpctest.Logger(t)))
	})
	return secureauditv1.NewReportServiceClient(p.Dial(t, addr, identity.ReportAgent, caller))
}

func TestRender(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)

	f0, f1, f2, f3 := finding(0, false, "d"), finding(1, true, "d"), finding(2, false, "d"), finding(3, true, "d")
	want := header(4).GetReport()
	want.Findings = []*secureauditv1.Finding{f0, f2}
	want.InfrastructureFindings = []*secureauditv1.Finding{f1, f3}
	wantMD := render.Markdown(want)
	wantJSON, err := render.JSON(want)
	if err != nil {
		t.Fatal(err)
	}

	docs, err := call(t, client, headerMsg(header(4, jsonDoc, markdown)), batchMsg(f0, f1, f2), batchMsg(f3))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if len(docs) != 2 || docs[0].format != jsonDoc || docs[1].format != markdown {
		t.Fatalf("documents %v, want JSON then Markdown in request order", formats(docs))
	}
	if diff := cmp.Diff(string(wantJSON), string(docs[0].data)); diff != "" {
		t.Errorf("report.json (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(string(wantMD), string(docs[1].data)); diff != "" {
		t.Errorf("report.md (-want +got):\n%s", diff)
	}
	got := &secureauditv1.Report{}
	if err := protojson.Unmarshal(docs[0].data, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("report with findings split by infrastructure, in order (-want +got):\n%s", diff)
	}
}

func TestRenderNoFindings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	docs, err := call(t, client, headerMsg(header(0, markdown)))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if len(docs) != 1 || !strings.Contains(string(docs[0].data), "No findings") {
		t.Errorf("documents %v, want one Markdown document saying there are no findings", formats(docs))
	}
}

func TestRenderLargeReportInChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	const n = 600
	long := strings.Repeat("A description long enough to make the report big. ", 80)
	msgs := []*secureauditv1.RenderRequest{headerMsg(header(n, markdown, jsonDoc))}
	want := header(n).GetReport()
	var batch []*secureauditv1.Finding
	for i := range n {
		f := finding(i, i%10 == 0, long)
		if f.GetInfrastructure() {
			want.InfrastructureFindings = append(want.InfrastructureFindings, f)
		} else {
			want.Findings = append(want.Findings, f)
		}
		batch = append(batch, f)
		if len(batch) == 200 {
			msgs = append(msgs, batchMsg(batch...))
			batch = nil
		}
	}
	wantJSON, err := render.JSON(want)
	if err != nil {
		t.Fatal(err)
	}
	wantMD := render.Markdown(want)
	if len(wantJSON) <= MaxChunk || len(wantMD) <= MaxChunk {
		t.Fatalf("test report too small: JSON %d, Markdown %d bytes", len(wantJSON), len(wantMD))
	}

	docs, err := call(t, client, msgs...)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if len(docs) != 2 {
		t.Fatalf("documents %v, want Markdown and JSON", formats(docs))
	}
	for i, wantDoc := range [][]byte{wantMD, wantJSON} {
		d := docs[i]
		if wantChunks := (len(wantDoc) + MaxChunk - 1) / MaxChunk; d.chunks != wantChunks || d.chunks < 2 {
			t.Errorf("%v: %d chunks, want %d", d.format, d.chunks, wantChunks)
		}
		if !bytes.Equal(d.data, wantDoc) {
			t.Errorf("%v: reassembled %d bytes differ from the %d rendered", d.format, len(d.data), len(wantDoc))
		}
	}
}

func TestRenderInvalid(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	f := func(n int) *secureauditv1.Finding { return finding(n, false, "") }
	tests := []refusal{
		{"no messages", nil, "the stream ended before the header"},
		{"findings before the header", []*secureauditv1.RenderRequest{batchMsg(f(0)), headerMsg(header(1, markdown))}, "the first message must be the header"},
		{"header twice", []*secureauditv1.RenderRequest{headerMsg(header(1, markdown)), headerMsg(header(1, markdown))}, "the header was sent twice"},
		{"fewer findings than announced", []*secureauditv1.RenderRequest{headerMsg(header(3, markdown)), batchMsg(f(0), f(1))}, "expected 3 findings, received 2"},
		{"none of the announced findings", []*secureauditv1.RenderRequest{headerMsg(header(2, jsonDoc))}, "expected 2 findings, received 0"},
		{"more findings than announced", []*secureauditv1.RenderRequest{headerMsg(header(1, markdown)), batchMsg(f(0), f(1))}, "expected 1 findings, received more"},
		{"a review state not announced", []*secureauditv1.RenderRequest{headerMsg(header(1, markdown)), batchMsg(f(0)), reviewMsg(&secureauditv1.ReviewState{})}, "a review state the header did not announce"},
	}
	refusedAll(t, client, tests)
}

func reviewMsg(st *secureauditv1.ReviewState) *secureauditv1.RenderRequest {
	return &secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Review{Review: st}}
}

// TestRenderReviewFollows: with review_follows, the report-agent answers
// the findings with the report's actions, the findings whose action is
// Revoke (render.RevokeFindings: here the user's critical grant, not the
// low one nor the infrastructure findings), before any document; the
// documents then show the review state sent back. A client that closes
// its side without the review state, or sends the review state before the
// findings ended, is refused.
func TestRenderReviewFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	f0, f1, f2, f3 := finding(0, false, "d"), finding(1, true, "d"), finding(2, false, "d"), finding(3, true, "d")
	h := header(4, jsonDoc)
	h.ReviewFollows = true
	state := &secureauditv1.ReviewState{Campaigns: []*secureauditv1.ReviewCampaign{{AuditId: h.GetReport().GetAuditId(), Cluster: "aks-test", Items: 2, Pending: 2, RevokeActions: 1}}}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.Render(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*secureauditv1.RenderRequest{headerMsg(h), batchMsg(f0, f1, f2), batchMsg(f3)} {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	want := header(4).GetReport()
	want.Findings = []*secureauditv1.Finding{f0, f2}
	if first.GetActions() == nil || !cmp.Equal(first.GetActions().GetRevokeFindingIds(), render.RevokeFindings(want)) || !cmp.Equal(first.GetActions().GetRevokeFindingIds(), []string{f0.GetId()}) {
		t.Fatalf("first response %v, want the actions naming %s", first, f0.GetId())
	}
	got := reviewed(t, stream, state)
	if diff := cmp.Diff(state, got.GetReview(), protocmp.Transform()); diff != "" {
		t.Errorf("report.json's review state (-sent +rendered):\n%s", diff)
	}

	refused := func(name string, msgs ...*secureauditv1.RenderRequest) {
		t.Helper()
		stream, err := client.Render(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
		}
		_ = stream.CloseSend()
		for {
			resp, err := stream.Recv()
			if err == nil && resp.GetActions() != nil {
				continue
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), name) {
				t.Errorf("Render = %v, %v; want InvalidArgument saying %q", resp, err, name)
			}
			return
		}
	}
	refused("the stream ended before the review state the header announced", headerMsg(h), batchMsg(f0, f1, f2, f3))
	refused("the review state before the findings ended (3 of 4 received)", headerMsg(h), batchMsg(f0, f1, f2), reviewMsg(state))
}

func TestRenderDeniesOtherCallers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.RiskAgent)
	_, err := call(t, client, headerMsg(header(0, markdown)))
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Render as risk-agent = %v, want PermissionDenied", err)
	}
}

func formats(docs []document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = fmt.Sprintf("%v (%d bytes)", d.format, len(d.data))
	}
	return out
}

// followHeader is a header that says report_follows, and reportMsg the
// report that ends its findings.
func followHeader(formats ...secureauditv1.ReportFormat) *secureauditv1.RenderHeader {
	return &secureauditv1.RenderHeader{Formats: formats, ReportFollows: true}
}

func reportMsg(count int, withheld ...string) *secureauditv1.RenderRequest {
	return withheldMsg(count, withheld, acceptedRisks(withheld...))
}

// withheldMsg is the report that ends count findings, withholding those
// named, its accepted risks being accepted.
func withheldMsg(count int, withheld []string, accepted []*secureauditv1.AcceptedFinding) *secureauditv1.RenderRequest {
	report := header(0).GetReport()
	report.AcceptedRisks = accepted
	return &secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Report{Report: &secureauditv1.RenderReport{
		Report: report, FindingCount: uint32(count), WithheldFindingIds: withheld}}}
}

// acceptedRisks are the accepted risks of the findings with the given IDs
// (finding(n)'s ID is n in 16 hex digits).
func acceptedRisks(ids ...string) []*secureauditv1.AcceptedFinding {
	var out []*secureauditv1.AcceptedFinding
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 16, 64)
		if err != nil {
			panic(err)
		}
		out = append(out, &secureauditv1.AcceptedFinding{Finding: finding(int(n), false, "d"), Status: secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED})
	}
	return out
}

// TestRenderReportFollows: with report_follows the findings come first and
// the report ends them; the documents are the bytes of the same report sent
// in the header, less the findings the report withholds (an accepted risk's
// finding, here f2), and with the review state when review_follows too.
func TestRenderReportFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	f0, f1, f2, f3 := finding(0, false, "d"), finding(1, true, "d"), finding(2, false, "d"), finding(3, true, "d")
	want := header(4).GetReport()
	want.Findings = []*secureauditv1.Finding{f0}
	want.InfrastructureFindings = []*secureauditv1.Finding{f1, f3}
	want.AcceptedRisks = acceptedRisks(f2.GetId())
	wantJSON, err := render.JSON(want)
	if err != nil {
		t.Fatal(err)
	}
	wantMD := render.Markdown(want)

	docs, err := call(t, client, headerMsg(followHeader(jsonDoc, markdown)), batchMsg(f0, f1), batchMsg(f2, f3), reportMsg(4, f2.GetId()))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if len(docs) != 2 || docs[0].format != jsonDoc || docs[1].format != markdown {
		t.Fatalf("documents %v, want JSON then Markdown", formats(docs))
	}
	if diff := cmp.Diff(string(wantJSON), string(docs[0].data)); diff != "" {
		t.Errorf("report.json (-header report, withheld finding left out +report that follows):\n%s", diff)
	}
	if diff := cmp.Diff(string(wantMD), string(docs[1].data)); diff != "" {
		t.Errorf("report.md (-want +got):\n%s", diff)
	}

	// With review_follows as well: the actions answer the report, then the
	// review state is rendered.
	h := followHeader(jsonDoc)
	h.ReviewFollows = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.Render(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*secureauditv1.RenderRequest{headerMsg(h), batchMsg(f0, f1, f2, f3), reportMsg(4)} {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(first.GetActions().GetRevokeFindingIds(), []string{f0.GetId()}) {
		t.Fatalf("first response %v, want the actions naming %s", first, f0.GetId())
	}
	state := &secureauditv1.ReviewState{Campaigns: []*secureauditv1.ReviewCampaign{{AuditId: want.GetAuditId(), Cluster: "aks-test", Items: 1, Pending: 1, RevokeActions: 1}}}
	got := reviewed(t, stream, state)
	if len(got.GetFindings()) != 2 || len(got.GetInfrastructureFindings()) != 2 {
		t.Errorf("rendered %d main and %d infrastructure findings, want 2 and 2", len(got.GetFindings()), len(got.GetInfrastructureFindings()))
	}
	if diff := cmp.Diff(state, got.GetReview(), protocmp.Transform()); diff != "" {
		t.Errorf("review state (-sent +rendered):\n%s", diff)
	}
}

// TestRenderReportFollowsInvalid: what breaks report_follows is refused
// with InvalidArgument naming it, before any document.
func TestRenderReportFollowsInvalid(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gRPC server over loopback mTLS")
	}
	client := newClient(t, identity.Orchestrator)
	f := func(n int) *secureauditv1.Finding { return finding(n, false, "") }
	withReport := followHeader(markdown)
	withReport.Report = header(0).GetReport()
	withCount := followHeader(markdown)
	withCount.FindingCount = 1
	tests := []refusal{
		{"no report after the findings", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0))}, "the stream ended after 1 findings without the report"},
		{"fewer findings than the report counts", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0)), reportMsg(2)}, "the report counts 2 findings sent, received 1"},
		{"withholds a finding not sent", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0)), reportMsg(1, f(5).GetId())}, "withholds 1 findings that were not sent"},
		{"withholds a finding it does not accept", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0), f(1)), withheldMsg(2, []string{f(1).GetId()}, nil)}, "withholds finding 0000000000000001, which is not one of its accepted risks"},
		{"accepts a finding it does not withhold", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0), f(1)), withheldMsg(2, nil, acceptedRisks(f(1).GetId()))}, "lists finding 0000000000000001 among its accepted risks but does not withhold it"},
		{"a message after the report", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0)), reportMsg(1), batchMsg(f(1))}, "a message after the report"},
		{"the review state before the report", []*secureauditv1.RenderRequest{headerMsg(followHeader(markdown)), batchMsg(f(0)), reviewMsg(&secureauditv1.ReviewState{})}, "the review state before the report"},
		{"a report the header carried", []*secureauditv1.RenderRequest{headerMsg(header(1, markdown)), batchMsg(f(0)), reportMsg(1)}, "report_follows not set"},
		{"a header with the report and report_follows", []*secureauditv1.RenderRequest{headerMsg(withReport)}, "says report_follows and carries neither the report nor a finding count"},
		{"a header with a count and report_follows", []*secureauditv1.RenderRequest{headerMsg(withCount)}, "says report_follows and carries neither the report nor a finding count"},
	}
	refusedAll(t, client, tests)
}

// reviewed sends the review state on a stream whose actions have arrived,
// closes its side and returns the report.json rendered after it.
func reviewed(t *testing.T, stream grpc.BidiStreamingClient[secureauditv1.RenderRequest, secureauditv1.RenderResponse], state *secureauditv1.ReviewState) *secureauditv1.Report {
	t.Helper()
	if err := stream.Send(reviewMsg(state)); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetActions() != nil || resp.GetFormat() != jsonDoc {
			t.Fatalf("response %v after the actions, want JSON chunks", resp)
		}
		data = append(data, resp.GetData()...)
	}
	got := &secureauditv1.Report{}
	if err := protojson.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	return got
}

// refusal is a Render call refused: its messages and what the error says.
type refusal struct {
	name string
	msgs []*secureauditv1.RenderRequest
	want string
}

// refusedAll checks each call is refused with InvalidArgument saying what
// it wants, before any document.
func refusedAll(t *testing.T, client secureauditv1.ReportServiceClient, tests []refusal) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := call(t, client, tt.msgs...)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Render = %v, %v; want InvalidArgument", formats(docs), err)
			}
			if len(docs) != 0 {
				t.Errorf("received documents %v before the error", formats(docs))
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}
