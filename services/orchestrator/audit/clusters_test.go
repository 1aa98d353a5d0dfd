package audit

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// servingAgent is an rbac-agent that presents one cluster: an empty
// snapshot whose header names it.
type servingAgent struct {
	secureauditv1.UnimplementedRBACServiceServer
	cluster string
	calls   atomic.Int32
}

func (s *servingAgent) Collect(_ *secureauditv1.CollectRequest, stream grpc.ServerStreamingServer[secureauditv1.CollectResponse]) error {
	s.calls.Add(1)
	return stream.Send(&secureauditv1.CollectResponse{Chunk: &secureauditv1.SnapshotChunk{
		Header:  &secureauditv1.SnapshotHeader{Cluster: s.cluster, Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE, CollectedAt: timestamppb.Now()},
		Trailer: &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{}},
	}})
}

// stoppingRisk is a risk-agent that refuses every assessment: an audit
// that reaches it collected from the right agent, and stops there.
type stoppingRisk struct {
	secureauditv1.UnimplementedRiskServiceServer
	calls atomic.Int32
}

func (s *stoppingRisk) Assess(grpc.BidiStreamingServer[secureauditv1.AssessRequest, secureauditv1.AssessResponse]) error {
	s.calls.Add(1)
	return status.Error(codes.FailedPrecondition, "test risk-agent: the audit stops here")
}

// TestRegisteredClusters runs audits of registered clusters over real mTLS,
// on both store backends, with no default rbac-agent: each audit dials the
// cluster's own rbac-agent with the registered SPIFFE ID. An agent that
// presents another cluster than the registration's fails the audit naming
// both (no report under the wrong name); an agent whose certificate is not
// the registered SPIFFE ID is never asked; an unregistered cluster is
// refused at StartAudit.
func TestRegisteredClusters(t *testing.T) { storagetest.Run(t, testRegisteredClusters) }

func testRegisteredClusters(t *testing.T, db *storage.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := rpctest.NewPKI(t)
	rbacManifest, err := scopes.Manifest(identity.RBACAgent)
	if err != nil {
		t.Fatal(err)
	}
	riskManifest, err := scopes.Manifest(identity.RiskAgent)
	if err != nil {
		t.Fatal(err)
	}
	prodAgent, devAgent := &servingAgent{cluster: "aks-prod"}, &servingAgent{cluster: "aks-dev"}
	prodAddr := p.Serve(t, identity.RBACAgent, rbacManifest, func(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, prodAgent) })
	devAddr := p.Serve(t, identity.RBACAgent, rbacManifest, func(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, devAgent) })
	risk := &stoppingRisk{}
	riskAddr := p.Serve(t, identity.RiskAgent, riskManifest, func(s *grpc.Server) { secureauditv1.RegisterRiskServiceServer(s, risk) })

	st := store.New(db)
	rbacID := identity.ID(identity.RBACAgent).String()
	for _, c := range []*secureauditv1.Cluster{
		{Name: "aks-prod", AgentAddress: prodAddr, AgentSpiffeId: rbacID},
		{Name: "aks-dev", AgentAddress: devAddr, AgentSpiffeId: rbacID},
		// Mis-registered: aks-test's address is aks-prod's agent.
		{Name: "aks-test", AgentAddress: prodAddr, AgentSpiffeId: rbacID},
		// The right address, another workload's SPIFFE ID.
		{Name: "aks-spoof", AgentAddress: devAddr, AgentSpiffeId: identity.ID(identity.RiskAgent).String()},
	} {
		c.RegisteredAt = timestamppb.Now()
		if err := st.CreateCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	v, err := validation.New(rpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing(identity.Orchestrator, "")
	if err != nil {
		t.Fatal(err)
	}
	orch := p.Credentials(t, identity.Orchestrator)
	var dialled atomic.Int32
	dial := func(addr string, id spiffeid.ID) (*grpc.ClientConn, error) {
		dialled.Add(1)
		return rpc.Dial(addr, id, rpc.ClientConfig{Credentials: orch, Tracer: tr.Provider, Validator: v})
	}
	agents := Agents{Risk: secureauditv1.NewRiskServiceClient(p.Dial(t, riskAddr, identity.RiskAgent, identity.Orchestrator))}
	r := NewRunner(agents, st, rpctest.Logger(t), noop.NewTracerProvider().Tracer("test"))
	r.SetLease(5*time.Second, 20*time.Millisecond)
	r.ClustersWith(st, dial)
	svc := NewService(r, st, rpctest.Logger(t))
	done := make(chan struct{})
	go func() { r.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done }()

	run := func(cluster string) *secureauditv1.Audit {
		t.Helper()
		resp, err := svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: cluster, SkipDirectory: true})
		if err != nil {
			t.Fatalf("start an audit of %s: %v", cluster, err)
		}
		for {
			a, err := st.GetAudit(ctx, resp.GetAudit().GetId())
			if err != nil {
				t.Fatal(err)
			}
			if terminal(a.GetState()) {
				return a
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-r.changed(a.GetId()):
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	// aks-prod: collected from its own agent, filed under its name, on to
	// the risk-agent.
	a := run("aks-prod")
	if a.GetCluster() != "aks-prod" || prodAgent.calls.Load() != 1 || devAgent.calls.Load() != 0 || risk.calls.Load() != 1 {
		t.Errorf("audit of aks-prod: cluster %q, prod agent asked %d times, dev agent %d, risk-agent %d; want aks-prod, 1, 0, 1 (error %q)",
			a.GetCluster(), prodAgent.calls.Load(), devAgent.calls.Load(), risk.calls.Load(), a.GetError())
	}
	if !strings.Contains(a.GetError(), "the audit stops here") {
		t.Errorf("audit of aks-prod failed with %q, want the test risk-agent's refusal (past collection)", a.GetError())
	}
	events, err := st.Events(ctx, a.GetId(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var named bool
	for _, e := range events {
		named = named || strings.Contains(e.GetMessage(), "from cluster aks-prod's rbac-agent at "+prodAddr)
	}
	if !named {
		t.Errorf("no event names the rbac-agent of aks-prod: %v", events)
	}

	// A second audit of aks-prod, most likely within the same second: it is
	// the cluster's last audit (audits are ordered by when they were asked
	// for, to the nanosecond, never by their random IDs).
	again := run("aks-prod")
	if !again.GetCreatedAt().AsTime().After(a.GetCreatedAt().AsTime()) {
		t.Errorf("the second audit's creation time %v is not after the first's %v", again.GetCreatedAt().AsTime(), a.GetCreatedAt().AsTime())
	}
	if last, err := st.LastAudit(ctx, "aks-prod"); err != nil || last.GetId() != again.GetId() {
		t.Errorf("aks-prod's last audit is %s, want the second one %s (%v)", last.GetId(), again.GetId(), err)
	}
	a = again
	prodAgent.calls.Store(1)
	risk.calls.Store(1)

	// aks-test: the registered address serves aks-prod. The audit fails
	// naming both; the risk-agent is never asked; nothing is filed under
	// aks-prod.
	a = run("aks-test")
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED || a.GetCluster() != "aks-test" {
		t.Errorf("mis-registered audit: state %s, cluster %q; want FAILED under aks-test", a.GetState(), a.GetCluster())
	}
	for _, want := range []string{`registered for cluster "aks-test" serves cluster "aks-prod"`, prodAddr, "no report is filed"} {
		if !strings.Contains(a.GetError(), want) {
			t.Errorf("mis-registered audit's error %q does not say %q", a.GetError(), want)
		}
	}
	if risk.calls.Load() != 1 {
		t.Errorf("the risk-agent was asked %d times, want 1 (the mis-registered audit must stop at collection)", risk.calls.Load())
	}
	if last, err := st.LastAudit(ctx, "aks-prod"); err != nil || last.GetId() == a.GetId() {
		t.Errorf("aks-prod's last audit is the mis-registered one (%v)", err)
	}
	if _, err := st.Findings(ctx, a.GetId()); err != nil {
		t.Fatal(err)
	}
	if input, err := st.ReportInput(ctx, a.GetId()); err == nil && input != nil {
		t.Errorf("a report input was stored for the mis-registered audit: %v", input)
	}

	// aks-spoof: the agent at the address is not the registered SPIFFE ID:
	// the handshake fails and the agent never serves a Collect.
	before := devAgent.calls.Load()
	a = run("aks-spoof")
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED || devAgent.calls.Load() != before {
		t.Errorf("audit of aks-spoof: state %s, dev agent asked %d more times; want FAILED and none", a.GetState(), devAgent.calls.Load()-before)
	}
	if !strings.Contains(a.GetError(), "rbac-agent") {
		t.Errorf("aks-spoof's error %q does not name the rbac-agent", a.GetError())
	}

	// Not registered, and no default rbac-agent: refused at once.
	_, err = svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: "aks-unknown"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cluster aks-unknown is not registered") {
		t.Errorf("audit of an unregistered cluster: %v, want FailedPrecondition naming it", err)
	}
	if _, err := svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("audit of no cluster without a default rbac-agent: %v, want FailedPrecondition", err)
	}
	if n := dialled.Load(); n != 4 {
		t.Errorf("dialled %d rbac-agents, want one per audit (4)", n)
	}
}
