package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// Tenants of the test: each entra-agent presents one.
const (
	tenantA  = "0a0a0a0a-0000-4000-8000-00000000000a"
	tenantB  = "0b0b0b0b-0000-4000-8000-00000000000b"
	tenantC  = "0c0c0c0c-0000-4000-8000-00000000000c"
	tenantD  = "0d0d0d0d-0000-4000-8000-00000000000d"
	tenantE  = "0e0e0e0e-0000-4000-8000-00000000000e"
	tenantF  = "0f0f0f0f-0000-4000-8000-00000000000f"
	tenantG  = "01010101-0000-4000-8000-000000000001"
	tenantH  = "02020202-0000-4000-8000-000000000002"
	aksA     = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-a/providers/Microsoft.ContainerService/managedClusters/aks-a"
	aksOther = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-a/providers/Microsoft.ContainerService/managedClusters/aks-other"
)

// bindingAgent is an rbac-agent that presents one cluster with a
// ClusterRoleBinding to a user (to users users, in bindings of 1,000, when
// users is set: more than 1,000 are resolved in several batches), so that
// an audit asks an entra-agent.
type bindingAgent struct {
	secureauditv1.UnimplementedRBACServiceServer
	cluster string
	users   int
}

func (s *bindingAgent) Collect(_ *secureauditv1.CollectRequest, stream grpc.ServerStreamingServer[secureauditv1.CollectResponse]) error {
	var bindings []*secureauditv1.ClusterRoleBinding
	for i := 0; i < max(s.users, 1); i += 1000 {
		b := &secureauditv1.ClusterRoleBinding{
			Meta:    &secureauditv1.ObjectMeta{Name: fmt.Sprintf("admins-%d", i)},
			RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
		}
		for j := i; j < min(i+1000, max(s.users, 1)); j++ {
			name := "alice@" + s.cluster + ".example.com"
			if j > 0 {
				name = fmt.Sprintf("user%d@%s.example.com", j, s.cluster)
			}
			b.Subjects = append(b.Subjects, &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: name})
		}
		bindings = append(bindings, b)
	}
	return stream.Send(&secureauditv1.CollectResponse{Chunk: &secureauditv1.SnapshotChunk{
		Header:              &secureauditv1.SnapshotHeader{Cluster: s.cluster, Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE, CollectedAt: timestamppb.Now()},
		ClusterRoleBindings: bindings,
		Trailer:             &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{ClusterRoleBindings: uint32(len(bindings))}},
	}})
}

// tenantAgent is an entra-agent that presents one tenant (and AKS
// cluster, as a snapshot does whatever the request names) and resolves
// nothing. It records the cluster the last request named.
type tenantAgent struct {
	secureauditv1.UnimplementedEntraServiceServer
	tenant, aks string
	// perCall, when set, is the tenant the agent's first, second, ...
	// Resolve call presents (the last one for later calls).
	perCall []string
	// assign makes it return an Azure role assignment (as a snapshot
	// without aksCluster does, for any cluster).
	assign bool
	calls  atomic.Int32
	asked  atomic.Value // string: the last request's cluster_resource_id
}

func (s *tenantAgent) Resolve(req *secureauditv1.ResolveRequest, stream grpc.ServerStreamingServer[secureauditv1.ResolveResponse]) error {
	n := s.calls.Add(1)
	s.asked.Store(req.GetClusterResourceId())
	tenant := s.tenant
	if len(s.perCall) > 0 {
		tenant = s.perCall[min(int(n), len(s.perCall))-1]
	}
	c := &secureauditv1.DirectoryChunk{Unresolved: req.GetPrincipals(), TenantId: tenant, ClusterResourceId: s.aks}
	if s.assign {
		c.RoleAssignments = []*secureauditv1.AzureRoleAssignment{{
			Id:          "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/providers/Microsoft.Authorization/roleAssignments/0e0e0e0e-0000-4000-8000-00000000000e",
			PrincipalId: "0e0e0e0e-0000-4000-8000-0000000000e1", PrincipalType: "User",
			RoleName: "Azure Kubernetes Service RBAC Cluster Admin", Scope: "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45",
			Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL},
		}}
	}
	return stream.Send(&secureauditv1.ResolveResponse{Chunk: c})
}

// checkedScopes records the agents an audit checked (approval.Registry
// does the check itself; TestCheckAgent covers it), refusing those at
// refused addresses.
type checkedScopes struct {
	mu      sync.Mutex
	checked []string
	refuse  string
}

func (c *checkedScopes) CheckAgent(_ context.Context, workload, where string, _ grpc.ClientConnInterface) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked = append(c.checked, workload+" "+where)
	if c.refuse != "" && strings.Contains(where, c.refuse) {
		return &testQuarantine{where: where}
	}
	return nil
}

type testQuarantine struct{ where string }

func (q *testQuarantine) Error() string { return q.where + " is quarantined (test)" }

// TestTenantEntraAgents runs audits of clusters registered with Entra
// tenants over real mTLS, on both store backends: each resolves through
// its tenant's entra-agent (checked for its scope manifest), a cluster
// of a tenant without an agent of its own falls back to the default one
// only if it presents that tenant, and an agent presenting another tenant
// or AKS cluster fails the audit before the risk-agent is asked, naming
// the cluster, the address and both tenants.
func TestTenantEntraAgents(t *testing.T) { storagetest.Run(t, testTenantEntraAgents) }

func testTenantEntraAgents(t *testing.T, db *storage.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := rpctest.NewPKI(t)
	manifest := func(w string) []byte { return manifestOf(t, w) }
	rbacAddr := map[string]string{}
	for _, c := range []string{"aks-a", "aks-b", "aks-c", "aks-d", "aks-aks", "aks-e", "aks-f", "aks-g", "aks-h"} {
		// aks-e's and aks-f's 1,001 principals are resolved in two batches.
		users := map[string]int{"aks-e": 1001, "aks-f": 1001}[c]
		rbacAddr[c] = p.Serve(t, identity.RBACAgent, manifest(identity.RBACAgent), func(s *grpc.Server) {
			secureauditv1.RegisterRBACServiceServer(s, &bindingAgent{cluster: c, users: users})
		})
	}
	agentA, agentB, agentDefault := &tenantAgent{tenant: tenantA, aks: aksA}, &tenantAgent{tenant: tenantB}, &tenantAgent{tenant: tenantA}
	// Tenant E's agent presents tenant B in its second answer, tenant F's
	// none; tenant G's returns Azure role assignments without naming their
	// AKS cluster, tenant H's names none and returns none.
	agentE, agentF := &tenantAgent{perCall: []string{tenantE, tenantB}}, &tenantAgent{perCall: []string{tenantF, ""}}
	agentG, agentH := &tenantAgent{tenant: tenantG, assign: true}, &tenantAgent{tenant: tenantH}
	entraAddr := map[*tenantAgent]string{}
	for _, a := range []*tenantAgent{agentA, agentB, agentDefault, agentE, agentF, agentG, agentH} {
		entraAddr[a] = p.Serve(t, identity.EntraAgent, manifest(identity.EntraAgent), func(s *grpc.Server) { secureauditv1.RegisterEntraServiceServer(s, a) })
	}
	risk := &stoppingRisk{}
	riskAddr := p.Serve(t, identity.RiskAgent, manifest(identity.RiskAgent), func(s *grpc.Server) { secureauditv1.RegisterRiskServiceServer(s, risk) })

	st := store.New(db)
	rbacID := identity.ID(identity.RBACAgent).String()
	for _, c := range []*secureauditv1.Cluster{
		{Name: "aks-a", EntraTenantId: tenantA, AksResourceId: aksA},
		{Name: "aks-b", EntraTenantId: strings.ToUpper(tenantB)},
		// Tenant C's agent is configured at tenant B's agent's address.
		{Name: "aks-c", EntraTenantId: tenantC},
		// Tenant D has no agent of its own: the default one (of tenant A) is
		// asked, and refused.
		{Name: "aks-d", EntraTenantId: tenantD},
		// Tenant A's agent reads the Azure access of another AKS cluster.
		{Name: "aks-aks", EntraTenantId: tenantA, AksResourceId: aksOther},
		{Name: "aks-e", EntraTenantId: tenantE},
		{Name: "aks-f", EntraTenantId: tenantF},
		{Name: "aks-g", EntraTenantId: tenantG, AksResourceId: aksA},
		{Name: "aks-h", EntraTenantId: tenantH, AksResourceId: aksA},
	} {
		c.AgentAddress, c.AgentSpiffeId, c.RegisteredAt = rbacAddr[c.GetName()], rbacID, timestamppb.Now()
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
	dial := func(addr string, id spiffeid.ID) (*grpc.ClientConn, error) {
		return rpc.Dial(addr, id, rpc.ClientConfig{Credentials: orch, Tracer: tr.Provider, Validator: v})
	}
	entraID := identity.ID(identity.EntraAgent)
	tenantConn := func(a *tenantAgent) grpc.ClientConnInterface {
		conn, err := dial(entraAddr[a], entraID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	agents := Agents{
		Risk:  secureauditv1.NewRiskServiceClient(p.Dial(t, riskAddr, identity.RiskAgent, identity.Orchestrator)),
		Entra: secureauditv1.NewEntraServiceClient(tenantConn(agentDefault)),
	}
	r := NewRunner(agents, st, rpctest.Logger(t), noop.NewTracerProvider().Tracer("test"))
	r.SetLease(5*time.Second, 20*time.Millisecond)
	r.ClustersWith(st, dial)
	scopes := &checkedScopes{}
	r.AgentScopesWith(scopes)
	r.TenantsWith(entraAddr[agentDefault],
		TenantAgent{Tenant: tenantA, Address: entraAddr[agentA], ID: entraID.String(), Conn: tenantConn(agentA)},
		TenantAgent{Tenant: tenantB, Address: entraAddr[agentB], ID: entraID.String(), Conn: tenantConn(agentB)},
		TenantAgent{Tenant: tenantC, Address: entraAddr[agentB], ID: entraID.String(), Conn: tenantConn(agentB)},
		TenantAgent{Tenant: tenantE, Address: entraAddr[agentE], ID: entraID.String(), Conn: tenantConn(agentE)},
		TenantAgent{Tenant: tenantF, Address: entraAddr[agentF], ID: entraID.String(), Conn: tenantConn(agentF)},
		TenantAgent{Tenant: tenantG, Address: entraAddr[agentG], ID: entraID.String(), Conn: tenantConn(agentG)},
		TenantAgent{Tenant: tenantH, Address: entraAddr[agentH], ID: entraID.String(), Conn: tenantConn(agentH)},
	)
	svc := NewService(r, st, rpctest.Logger(t))
	done := make(chan struct{})
	go func() { r.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done }()

	run := func(cluster string) *secureauditv1.Audit {
		t.Helper()
		resp, err := svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: cluster})
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
	calls := func() [3]int32 { return [3]int32{agentA.calls.Load(), agentB.calls.Load(), agentDefault.calls.Load()} }
	contains := func(what, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s %q does not say %q", what, got, w)
			}
		}
	}

	tests := []struct {
		cluster string
		// asked are the calls of tenant A's, tenant B's and the default
		// agent the audit makes.
		asked [3]int32
		// passed: the audit reached the risk-agent (the test one refuses).
		passed bool
		want   []string
	}{
		{cluster: "aks-a", asked: [3]int32{1, 0, 0}, passed: true},
		{cluster: "aks-b", asked: [3]int32{0, 1, 0}, passed: true},
		{cluster: "aks-c", asked: [3]int32{0, 1, 0}, want: []string{
			`cluster "aks-c" registered with Entra tenant "` + tenantC + `", serves tenant "` + tenantB + `"`, entraAddr[agentB], "no report is filed"}},
		{cluster: "aks-d", asked: [3]int32{0, 0, 1}, want: []string{
			"the default entra-agent at " + entraAddr[agentDefault], `cluster "aks-d" registered with Entra tenant "` + tenantD + `", serves tenant "` + tenantA + `"`,
			"no -tenant-entra-agent is configured for tenant " + tenantD}},
		{cluster: "aks-aks", asked: [3]int32{1, 0, 0}, want: []string{
			`cluster "aks-aks" registered as AKS cluster ` + aksOther + `, reads the Azure access of AKS cluster ` + aksA, entraAddr[agentA]}},
		// The second batch's answer of another tenant, or of none, is
		// refused as the first's would be.
		{cluster: "aks-e", want: []string{
			"tenant " + tenantE + "'s entra-agent at " + entraAddr[agentE],
			`cluster "aks-e" registered with Entra tenant "` + tenantE + `", serves tenant "` + tenantB + `" (in its answer to batch 2 of 2 of principals)`, "no report is filed"}},
		{cluster: "aks-f", want: []string{
			"tenant " + tenantF + "'s entra-agent at " + entraAddr[agentF],
			`cluster "aks-f" registered with Entra tenant "` + tenantF + `", presents no tenant (in its answer to batch 2 of 2 of principals)`, "no report is filed"}},
		// Azure access of no named cluster, for a cluster registered with
		// its AKS resource ID, is refused; an answer without Azure access
		// needs no cluster.
		{cluster: "aks-g", want: []string{
			"tenant " + tenantG + "'s entra-agent at " + entraAddr[agentG],
			`cluster "aks-g" registered as AKS cluster ` + aksA + `, returns Azure role or deny assignments without naming the AKS cluster`, "no report is filed"}},
		{cluster: "aks-h", passed: true},
	}
	for _, tt := range tests {
		before, riskBefore := calls(), risk.calls.Load()
		a := run(tt.cluster)
		after := calls()
		for i := range after {
			after[i] -= before[i]
		}
		if after != tt.asked {
			t.Errorf("audit of %s asked the entra-agents of tenant A, B and the default %v times, want %v (error %q)", tt.cluster, after, tt.asked, a.GetError())
		}
		reached := risk.calls.Load() > riskBefore
		if reached != tt.passed {
			t.Errorf("audit of %s reached the risk-agent: %v, want %v (error %q)", tt.cluster, reached, tt.passed, a.GetError())
		}
		if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED || a.GetCluster() != tt.cluster {
			t.Errorf("audit of %s: state %s, cluster %q; want FAILED under its name", tt.cluster, a.GetState(), a.GetCluster())
		}
		contains("audit of "+tt.cluster+"'s error", a.GetError(), tt.want...)
		// The registered AKS resource ID reaches the agent with the request.
		if reg, err := st.GetCluster(ctx, tt.cluster); err == nil && tt.asked[0] == 1 {
			if got, _ := agentA.asked.Load().(string); got != reg.GetAksResourceId() {
				t.Errorf("audit of %s asked tenant A's agent about AKS cluster %q, want the registered %q", tt.cluster, got, reg.GetAksResourceId())
			}
		}
		if input, err := st.ReportInput(ctx, a.GetId()); err == nil && input != nil {
			t.Errorf("a report input was stored for the audit of %s", tt.cluster)
		}
	}
	// The resolve stage names the tenant and its agent.
	last, err := st.LastAudit(ctx, "aks-b")
	if err != nil {
		t.Fatal(err)
	}
	events, err := st.Events(ctx, last.GetId(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var named bool
	for _, e := range events {
		named = named || strings.Contains(e.GetMessage(), "(tenant "+tenantB+") through tenant "+tenantB+"'s entra-agent at "+entraAddr[agentB])
	}
	if !named {
		t.Errorf("no event of aks-b's audit names its tenant's entra-agent: %v", events)
	}
	// Every audit through a tenant's agent checked its scope manifest; the
	// default one is checked by the gate, as before.
	scopes.mu.Lock()
	checked := strings.Join(scopes.checked, "\n")
	scopes.mu.Unlock()
	for _, want := range []string{"entra-agent tenant " + tenantA + "'s entra-agent at " + entraAddr[agentA], "entra-agent tenant " + tenantC + "'s entra-agent at " + entraAddr[agentB]} {
		if !strings.Contains(checked, want) {
			t.Errorf("scope checks %q do not include %q", checked, want)
		}
	}

	// A quarantined tenant agent: the audit fails before collection.
	scopes.mu.Lock()
	scopes.refuse = entraAddr[agentA]
	scopes.mu.Unlock()
	before := calls()
	a := run("aks-a")
	if calls() != before {
		t.Errorf("a quarantined entra-agent was asked: calls %v, before %v", calls(), before)
	}
	contains("audit through a quarantined agent's error", a.GetError(), "cluster aks-a", "quarantined")

	// The agent is checked again once it read the registered AKS cluster
	// (it checks its credential at a cluster when a request first names
	// it): a refusal then fails this audit before the risk-agent.
	if !strings.Contains(checked, "tenant "+tenantA+"'s entra-agent at "+entraAddr[agentA]+" ("+entraID.String()+"), after it read AKS cluster "+aksA) {
		t.Errorf("scope checks %q do not include tenant A's agent after it read %s", checked, aksA)
	}
	scopes.mu.Lock()
	scopes.refuse = "after it read AKS cluster " + aksA
	scopes.mu.Unlock()
	before, riskBefore := calls(), risk.calls.Load()
	a = run("aks-a")
	if got := calls(); got[0] != before[0]+1 {
		t.Errorf("tenant A's agent was asked %d times, want once", got[0]-before[0])
	}
	if risk.calls.Load() != riskBefore {
		t.Error("an audit refused after the agent's check reached the risk-agent")
	}
	contains("audit refused after the agent read its cluster", a.GetError(), "cluster aks-a", "after it read AKS cluster "+aksA, "quarantined")
	scopes.mu.Lock()
	scopes.refuse = ""
	scopes.mu.Unlock()

	// No agent for the tenant and no default one: the audit fails naming
	// the tenant, before any agent is asked.
	bare := NewRunner(Agents{}, st, rpctest.Logger(t), noop.NewTracerProvider().Tracer("test"))
	bare.TenantsWith("", TenantAgent{Tenant: tenantA, Address: entraAddr[agentA], ID: entraID.String(), Conn: tenantConn(agentA)})
	reg, err := st.GetCluster(ctx, "aks-b")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bare.entraAgent(ctx, reg)
	if err == nil {
		t.Fatal("an audit of a cluster whose tenant no entra-agent serves was given one")
	}
	contains("no agent's error", err.Error(), "cluster aks-b is registered with Entra tenant "+tenantB+" and no entra-agent serves that tenant", "-tenant-entra-agent "+tenantB+"=HOST:PORT")
	// A cluster without a tenant uses the default agent, or none.
	if c, err := bare.entraAgent(ctx, &secureauditv1.Cluster{Name: "plain"}); c != nil || err != nil {
		t.Errorf("a cluster without a tenant and no default agent: %v, %v; want none", c, err)
	}
}

// TestCheckMixedAnswers checks the answers of an entra-agent for a cluster
// registered without a tenant or AKS resource ID: its batches may present
// any one tenant and cluster, but never two.
func TestCheckMixedAnswers(t *testing.T) {
	c := &entraChoice{where: "the default entra-agent at 127.0.0.1:8442 (-entra-agent)", cluster: "plain"}
	for _, tt := range []struct {
		name    string
		streams []presented
		want    string
	}{
		{"one tenant", []presented{{tenant: tenantA, tenants: []string{tenantA}}, {tenant: tenantA, tenants: []string{tenantA}}}, ""},
		{"none", []presented{{}, {}}, ""},
		{"two tenants", []presented{{tenant: tenantA, tenants: []string{tenantA}}, {tenant: tenantB, tenants: []string{tenantB}}},
			`the default entra-agent at 127.0.0.1:8442 (-entra-agent), resolving cluster "plain", presents Entra tenant "` + tenantA + `" and then tenant "` + tenantB + `" (in its answer to batch 2 of 2 of principals)`},
		{"two tenants in one answer", []presented{{tenant: tenantA, tenants: []string{tenantA, tenantB}}},
			`presents Entra tenant "` + tenantA + `" and then tenant "` + tenantB + `": an answer mixing tenants is refused`},
		{"two clusters", []presented{{aks: aksA, clusters: []string{aksA}}, {aks: aksOther, clusters: []string{aksOther}}},
			"reads the Azure access of AKS cluster " + aksA + " and then of AKS cluster " + aksOther + " (in its answer to batch 2 of 2 of principals)"},
		{"a cluster and none", []presented{{aks: aksA, clusters: []string{aksA}, azure: true}, {azure: true}}, ""},
	} {
		err := c.check(&directory{streams: tt.streams})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

// TestNoEntraAgentMessage: the resolve stage of an audit no entra-agent
// serves says why, for an unregistered cluster and for one registered
// without a tenant.
func TestNoEntraAgentMessage(t *testing.T) {
	for _, tt := range []struct {
		reg     *secureauditv1.Cluster
		tenants bool
		want    string
	}{
		{nil, false, "no entra-agent configured: auditing without identity data"},
		{&secureauditv1.Cluster{Name: "plain"}, false, "no entra-agent configured: auditing without identity data"},
		{nil, true, "no default entra-agent (-entra-agent) for an audit of an unregistered cluster"},
		{&secureauditv1.Cluster{Name: "plain"}, true, "no default entra-agent (-entra-agent) for cluster plain, registered without an Entra tenant"},
	} {
		got := noEntraAgent(tt.reg, tt.tenants)
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("noEntraAgent(%v, %v) = %q, want %q", tt.reg, tt.tenants, got, tt.want)
		}
	}
}
