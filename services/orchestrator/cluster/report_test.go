package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/cluster"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// recordingAgent is a report-agent that keeps the fleet RenderFleetStream
// received (the header's fleet with the batches' clusters) and the size of
// each message, and answers each format with a document naming it, in two
// chunks. (The real rendering is tested in the report-agent module and end
// to end through the cli.)
type recordingAgent struct {
	secureauditv1.UnimplementedReportServiceServer
	mu    sync.Mutex
	got   *secureauditv1.FleetReport
	sizes []int
}

func (a *recordingAgent) RenderFleetStream(stream grpc.BidiStreamingServer[secureauditv1.RenderFleetStreamRequest, secureauditv1.RenderFleetStreamResponse]) error {
	var (
		fleet   *secureauditv1.FleetReport
		formats []secureauditv1.ReportFormat
		sizes   []int
	)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		sizes = append(sizes, proto.Size(req))
		if h := req.GetHeader(); h != nil {
			fleet, formats = proto.Clone(h.GetFleet()).(*secureauditv1.FleetReport), h.GetFormats()
			continue
		}
		fleet.Clusters = append(fleet.Clusters, req.GetClusters().GetClusters()...)
	}
	a.mu.Lock()
	a.got, a.sizes = fleet, sizes
	a.mu.Unlock()
	for _, f := range formats {
		for i, part := range []string{fmt.Sprintf("%s of %d ", f, len(fleet.GetClusters())), "clusters"} {
			if err := stream.Send(&secureauditv1.RenderFleetStreamResponse{Format: f, Data: []byte(part), Last: i == 1}); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestFleetReport gathers the fleet report on both backends through the
// server chain over mTLS, the report-agent over mTLS as the orchestrator:
// the request it renders carries the label filter, each cluster's newest
// audits as its trend (oldest first, any state, of that cluster only), and
// the summary's counts; the documents come back in the requested order.
// Without a report-agent the RPC is FailedPrecondition.
func TestFleetReport(t *testing.T) { storagetest.Run(t, testFleetReport) }

func testFleetReport(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	p := rpctest.NewPKI(t)
	var err error
	if p.Callers, err = authz.ParseCallers("callers.yaml", []byte(policy)); err != nil {
		t.Fatal(err)
	}
	agentManifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	agent := &recordingAgent{}
	agentAddr := p.Serve(t, identity.ReportAgent, agentManifest, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, agent) })
	renderer := secureauditv1.NewReportServiceClient(p.Dial(t, agentAddr, identity.ReportAgent, identity.Orchestrator))

	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db)
	now := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	clock := cluster.WithClock(func() time.Time { return now })
	srv := cluster.NewServer(st, rpctest.Logger(t), cluster.WithFleet(st), cluster.WithRenderer(renderer), clock)
	addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) { secureauditv1.RegisterClusterServiceServer(s, srv) })
	c := secureauditv1.NewClusterServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
	bare := cluster.NewServer(st, rpctest.Logger(t), cluster.WithFleet(st), clock)
	bareAddr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) { secureauditv1.RegisterClusterServiceServer(s, bare) })
	noAgent := secureauditv1.NewClusterServiceClient(p.Dial(t, bareAddr, identity.Orchestrator, identity.CLI))

	for _, name := range []string{"aks-prod", "aks-dev"} {
		env := "prod"
		if name == "aks-dev" {
			env = "dev"
		}
		cl := &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
			Labels: map[string]string{"environment": env}}
		if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: cl}); err != nil {
			t.Fatal(err)
		}
	}
	// aks-prod: twelve audits, every fourth failed, the critical count
	// falling by one each time; aks-dev's audits interleave.
	var prodIDs []string
	for i := range 12 {
		at := timestamppb.New(now.Add(time.Duration(i-24) * time.Hour))
		a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", 2*i+1), Cluster: "aks-prod", CreatedAt: at,
			State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, Summary: &secureauditv1.SeverityCounts{Critical: uint32(20 - i), High: 5}}
		if i%4 == 3 {
			a.State, a.Summary, a.Error = secureauditv1.AuditState_AUDIT_STATE_FAILED, nil, "collect: unavailable"
		}
		d := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", 2*i+2), Cluster: "aks-dev", CreatedAt: at,
			State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, Summary: &secureauditv1.SeverityCounts{Low: 1}}
		for _, x := range []*secureauditv1.Audit{a, d} {
			if err := st.CreateAudit(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		prodIDs = append(prodIDs, a.GetId())
	}

	md, html := secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_HTML
	docs, order, err := fleetReport(ctx, c, &secureauditv1.GetFleetReportRequest{Labels: map[string]string{"environment": "prod"}, Formats: []secureauditv1.ReportFormat{html, md}})
	if err != nil {
		t.Fatalf("GetFleetReport: %v", err)
	}
	if !cmp.Equal(order, []secureauditv1.ReportFormat{html, md}) || docs[md] != "REPORT_FORMAT_MARKDOWN of 1 clusters" || docs[html] != "REPORT_FORMAT_HTML of 1 clusters" {
		t.Errorf("documents %v: %q", order, docs)
	}
	agent.mu.Lock()
	got := agent.got
	agent.mu.Unlock()
	if len(got.GetClusters()) != 1 || got.GetClusters()[0].GetName() != "aks-prod" {
		t.Fatalf("rendered clusters %v, want aks-prod only (environment=prod)", got.GetClusters())
	}
	prod := got.GetClusters()[0]
	var trendIDs []string
	for _, a := range prod.GetTrend() {
		trendIDs = append(trendIDs, a.GetId())
	}
	// The default trend: the newest ten, oldest first (the newest failed).
	if diff := cmp.Diff(prodIDs[2:], trendIDs); diff != "" {
		t.Errorf("trend of aks-prod (-want +got):\n%s", diff)
	}
	if s := prod.GetTrend()[1]; s.GetState() != "AUDIT_STATE_FAILED" || s.GetError() != "collect: unavailable" {
		t.Errorf("the failed audit in the trend: %v", s)
	}
	// The newest success: i = 10, 20 - 10 critical.
	if diff := cmp.Diff(&secureauditv1.SeverityCounts{Critical: 10, High: 5}, prod.GetTrend()[8].GetSummary(), protocmp.Transform()); diff != "" {
		t.Errorf("newest counts in the trend (-want +got):\n%s", diff)
	}
	if got.GetTrendAudits() != 10 || !cmp.Equal(got.GetSelector(), map[string]string{"environment": "prod"}) ||
		prod.GetLastSucceeded().GetId() != prodIDs[10] || prod.GetLastAudit().GetId() != prodIDs[11] || prod.GetFailedAudits() != 1 {
		t.Errorf("fleet report header or summary: trend %d, selector %v, last succeeded %s, last %s, failed %d",
			got.GetTrendAudits(), got.GetSelector(), prod.GetLastSucceeded().GetId(), prod.GetLastAudit().GetId(), prod.GetFailedAudits())
	}

	// A shorter trend, asked for.
	if _, _, err := fleetReport(ctx, c, &secureauditv1.GetFleetReportRequest{Trend: 3, Formats: []secureauditv1.ReportFormat{md}}); err != nil {
		t.Fatal(err)
	}
	agent.mu.Lock()
	for _, cl := range agent.got.GetClusters() {
		if len(cl.GetTrend()) != 3 {
			t.Errorf("%s: trend of %d audits, want 3", cl.GetName(), len(cl.GetTrend()))
		}
	}
	agent.mu.Unlock()

	// The contract: only Markdown and HTML.
	if _, _, err := fleetReport(ctx, c, &secureauditv1.GetFleetReportRequest{Formats: []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_JSON}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetFleetReport as JSON: %v, want InvalidArgument", err)
	}
	if _, _, err := fleetReport(ctx, noAgent, &secureauditv1.GetFleetReportRequest{Formats: []secureauditv1.ReportFormat{md}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetFleetReport without a report-agent: %v, want FailedPrecondition", err)
	}
}

func fleetReport(ctx context.Context, c secureauditv1.ClusterServiceClient, req *secureauditv1.GetFleetReportRequest) (map[secureauditv1.ReportFormat]string, []secureauditv1.ReportFormat, error) {
	stream, err := c.GetFleetReport(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	docs := map[secureauditv1.ReportFormat]string{}
	var order []secureauditv1.ReportFormat
	open := false
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return docs, order, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if !open {
			order = append(order, chunk.GetFormat())
		}
		docs[chunk.GetFormat()] += string(chunk.GetData())
		open = !chunk.GetLast()
	}
}

// TestFleetMessageLimit: a fleet view larger than a message may carry is
// refused with ResourceExhausted naming its size and what to narrow, and a
// narrower one within the bound is served. A fleet report larger than a
// message is sent to the report-agent in batches of clusters, each message
// within the bound, and arrives whole: the same fleet as one batch carries
// under the platform's bound. Only a cluster that does not fit a message
// alone is refused, before the report-agent is called. The bounds are set
// just under the sizes this fleet measures with the platform's.
func TestFleetMessageLimit(t *testing.T) { storagetest.Run(t, testFleetMessageLimit) }

func testFleetMessageLimit(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	p := rpctest.NewPKI(t)
	var err error
	if p.Callers, err = authz.ParseCallers("callers.yaml", []byte(policy)); err != nil {
		t.Fatal(err)
	}
	agentManifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	agent := &recordingAgent{}
	agentAddr := p.Serve(t, identity.ReportAgent, agentManifest, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, agent) })
	renderer := secureauditv1.NewReportServiceClient(p.Dial(t, agentAddr, identity.ReportAgent, identity.Orchestrator))
	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db)
	now := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	serveWith := func(opts ...cluster.Option) secureauditv1.ClusterServiceClient {
		srv := cluster.NewServer(st, rpctest.Logger(t), append([]cluster.Option{cluster.WithFleet(st), cluster.WithRenderer(renderer),
			cluster.WithClock(func() time.Time { return now })}, opts...)...)
		addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) { secureauditv1.RegisterClusterServiceServer(s, srv) })
		return secureauditv1.NewClusterServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
	}
	c := serveWith()
	for i, name := range []string{"aks-dev", "aks-prod"} {
		cl := &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
			Labels: map[string]string{"environment": name[4:]}}
		if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: cl}); err != nil {
			t.Fatal(err)
		}
		a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), Cluster: name, CreatedAt: timestamppb.New(now.Add(-time.Hour)),
			State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, Summary: &secureauditv1.SeverityCounts{High: 5}}
		if err := st.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		var fs []*secureauditv1.Finding
		for j := range 5 {
			fs = append(fs, finding(10*i+j, secureauditv1.Severity_SEVERITY_HIGH, false))
		}
		if err := st.SaveResult(ctx, a.GetId(), fs, &secureauditv1.Report{Cluster: name}, nil); err != nil {
			t.Fatal(err)
		}
	}
	whole, err := c.GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	md := []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN}
	if _, _, err := fleetReport(ctx, c, &secureauditv1.GetFleetReportRequest{Formats: md}); err != nil {
		t.Fatal(err)
	}
	agent.mu.Lock()
	oneBatch, sizes := agent.got, agent.sizes
	agent.got, agent.sizes = nil, nil
	agent.mu.Unlock()
	if len(sizes) != 2 || len(oneBatch.GetClusters()) != 2 {
		t.Fatalf("under the platform's bound: %d messages (want the header and one batch), %d clusters", len(sizes), len(oneBatch.GetClusters()))
	}

	viewLimit := proto.Size(whole) - 1
	limited := serveWith(cluster.WithMessageLimit(viewLimit))
	_, err = limited.GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{})
	want := fmt.Sprintf("the fleet view of 2 clusters would be a message of %d bytes, over the %d bytes a message may carry: select fewer clusters by label", proto.Size(whole), viewLimit)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), want) {
		t.Errorf("fleet view over the bound: %v, want ResourceExhausted %q", err, want)
	}
	if resp, err := limited.GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{Labels: map[string]string{"environment": "dev"}}); err != nil || len(resp.GetClusters()) != 1 {
		t.Errorf("fleet view of one cluster within the bound: %v, %v", resp, err)
	}
	// The streamed view of the same fleet: every message within the bound,
	// the view whole, the same as the one message under the platform's.
	streamed, sizes, err := streamFleetSummary(ctx, limited, &secureauditv1.GetFleetSummaryRequest{})
	if err != nil {
		t.Fatalf("StreamFleetSummary over one message of %d bytes: %v", viewLimit, err)
	}
	if len(sizes) != 3 {
		t.Errorf("StreamFleetSummary: %d messages, want the header and two batches", len(sizes))
	}
	for i, n := range sizes {
		if n > viewLimit {
			t.Errorf("StreamFleetSummary message %d is %d bytes, over the bound of %d", i, n, viewLimit)
		}
	}
	if diff := cmp.Diff(whole, streamed, protocmp.Transform()); diff != "" {
		t.Errorf("the streamed fleet view differs from GetFleetSummary's (-one +streamed):\n%s", diff)
	}
	if _, _, err := streamFleetSummary(ctx, serveWith(cluster.WithMessageLimit(100)), &secureauditv1.GetFleetSummaryRequest{}); status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(status.Convert(err).Message(), "cluster aks-dev of the fleet view alone would be a message of") {
		t.Errorf("StreamFleetSummary with a cluster over the bound: %v, want ResourceExhausted naming aks-dev", err)
	}

	// The bound just under the one batch of both clusters: two batches.
	reportLimit := sizes[1] - 1
	limited = serveWith(cluster.WithMessageLimit(reportLimit))
	docs, _, err := fleetReport(ctx, limited, &secureauditv1.GetFleetReportRequest{Formats: md})
	if err != nil {
		t.Fatalf("fleet report over one message of %d bytes: %v", reportLimit, err)
	}
	if got := docs[md[0]]; got != "REPORT_FORMAT_MARKDOWN of 2 clusters" {
		t.Errorf("fleet report over one message: %q", got)
	}
	agent.mu.Lock()
	if len(agent.sizes) != 3 {
		t.Errorf("fleet report over one message: %d messages, want the header and two batches", len(agent.sizes))
	}
	for i, n := range agent.sizes {
		if n > reportLimit {
			t.Errorf("message %d to the report-agent is %d bytes, over the bound of %d", i, n, reportLimit)
		}
	}
	if diff := cmp.Diff(oneBatch, agent.got, protocmp.Transform()); diff != "" {
		t.Errorf("the fleet in batches differs from the fleet in one batch (-one +batches):\n%s", diff)
	}
	agent.got = nil
	agent.mu.Unlock()

	// A bound no cluster fits: refused, naming the cluster, nothing sent.
	limited = serveWith(cluster.WithMessageLimit(100))
	_, _, err = fleetReport(ctx, limited, &secureauditv1.GetFleetReportRequest{Formats: md})
	want = "cluster aks-dev of the fleet report alone would be a message of "
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), want) {
		t.Errorf("fleet report of a cluster over the bound: %v, want ResourceExhausted %q", err, want)
	}
	agent.mu.Lock()
	if agent.got != nil {
		t.Errorf("the report-agent was asked to render a fleet with a cluster over the bound")
	}
	agent.mu.Unlock()
}

// refusingAgent is a report-agent that reads the fleet report's header and
// refuses the rest, as the real one refuses a malformed stream.
type refusingAgent struct {
	secureauditv1.UnimplementedReportServiceServer
}

func (refusingAgent) RenderFleetStream(stream grpc.BidiStreamingServer[secureauditv1.RenderFleetStreamRequest, secureauditv1.RenderFleetStreamResponse]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return status.Error(codes.InvalidArgument, "invalid input: expected 2 clusters, received more")
}

// TestFleetReportAgentRefuses: when the report-agent ends the stream with an
// error while the orchestrator is still sending batches, GetFleetReport
// answers Unavailable with the agent's own message, not a bare EOF.
func TestFleetReportAgentRefuses(t *testing.T) { storagetest.Run(t, testFleetReportAgentRefuses) }

func testFleetReportAgentRefuses(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	p := rpctest.NewPKI(t)
	var err error
	if p.Callers, err = authz.ParseCallers("callers.yaml", []byte(policy)); err != nil {
		t.Fatal(err)
	}
	agentManifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		t.Fatal(err)
	}
	agentAddr := p.Serve(t, identity.ReportAgent, agentManifest, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, refusingAgent{}) })
	renderer := secureauditv1.NewReportServiceClient(p.Dial(t, agentAddr, identity.ReportAgent, identity.Orchestrator))
	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db)
	// Batches of one cluster each (the bound just over one), many of them.
	srv := cluster.NewServer(st, rpctest.Logger(t), cluster.WithFleet(st), cluster.WithRenderer(renderer), cluster.WithMessageLimit(400))
	addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) { secureauditv1.RegisterClusterServiceServer(s, srv) })
	c := secureauditv1.NewClusterServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
	for i := range 50 {
		name := fmt.Sprintf("aks-%02d", i)
		cl := &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent"}
		if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: cl}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = fleetReport(ctx, c, &secureauditv1.GetFleetReportRequest{Formats: []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN}})
	want := "report-agent: render the fleet report: invalid input: expected 2 clusters, received more"
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != want {
		t.Errorf("GetFleetReport with a refusing report-agent: %v, want Unavailable %q", err, want)
	}
}

// streamFleetSummary reads StreamFleetSummary into one response, and the
// size of each message.
func streamFleetSummary(ctx context.Context, c secureauditv1.ClusterServiceClient, req *secureauditv1.GetFleetSummaryRequest) (*secureauditv1.GetFleetSummaryResponse, []int, error) {
	stream, err := c.StreamFleetSummary(ctx, &secureauditv1.StreamFleetSummaryRequest{Request: req})
	if err != nil {
		return nil, nil, err
	}
	var (
		sum   *secureauditv1.GetFleetSummaryResponse
		sizes []int
	)
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		sizes = append(sizes, proto.Size(resp))
		if h := resp.GetHeader(); h != nil {
			sum = h.GetSummary()
			continue
		}
		sum.Clusters = append(sum.Clusters, resp.GetClusters().GetClusters()...)
	}
	return sum, sizes, nil
}
