package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/cluster"
	"secureaudit.dev/services/orchestrator/evidence"
	"secureaudit.dev/services/orchestrator/schedule"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const policy = `apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, operator]
`

// serve starts the ClusterService over real mTLS, with the orchestrator's
// manifest, caller policy and validation, on db; it returns a client as
// the cli and the scheduler.
func serve(t *testing.T, db *storage.DB) (secureauditv1.ClusterServiceClient, *schedule.Scheduler, *store.Store) {
	c, sched, st, _ := serveWithEvidence(t, db)
	return c, sched, st
}

// serveWithEvidence is serve, also returning the evidence log (a real one
// on db) the server records registrations in.
func serveWithEvidence(t *testing.T, db *storage.DB) (secureauditv1.ClusterServiceClient, *schedule.Scheduler, *store.Store, *evidence.Log) {
	t.Helper()
	p := rpctest.NewPKI(t)
	var err error
	if p.Callers, err = authz.ParseCallers("callers.yaml", []byte(policy)); err != nil {
		t.Fatal(err)
	}
	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db)
	sched := schedule.New(st, func(context.Context, string, bool) (*secureauditv1.Audit, error) { return nil, nil }, rpctest.Logger(t))
	evlog, err := evidence.New(context.Background(), db, filepath.Join(t.TempDir(), "evidence.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := cluster.NewServer(st, rpctest.Logger(t), cluster.WithSchedules(sched), cluster.WithFleet(st), cluster.WithEvidence(evlog),
		cluster.WithClock(func() time.Time { return time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC) }))
	addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) { secureauditv1.RegisterClusterServiceServer(s, srv) })
	return secureauditv1.NewClusterServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI)), sched, st, evlog
}

func prod() *secureauditv1.Cluster {
	return &secureauditv1.Cluster{
		Name:          "aks-prod",
		AgentAddress:  "rbac-agent.aks-prod.internal:8441",
		AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
		EntraTenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
		AksResourceId: "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod",
		Labels:        map[string]string{"environment": "prod", "owner": "platform-team", "criticality": "critical"},
		Schedule:      "0 2 * * *",
		RetentionDays: 90,
	}
}

// TestClusterService registers, lists (by label), gets and deregisters
// clusters through the real server chain on both backends: the contract's
// validation refuses bad names, addresses, SPIFFE IDs and labels; the
// handler refuses another trust domain; a cluster's schedule is created
// with it and removed with it.
func TestClusterService(t *testing.T) { storagetest.Run(t, testClusterService) }

func testClusterService(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	c, sched, st, evlog := serveWithEvidence(t, db)

	resp, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: prod()})
	if err != nil {
		t.Fatal(err)
	}
	want := prod()
	want.RegisteredAt = timestamppb.New(time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC))
	want.RegisteredBy = identity.ID(identity.CLI).String()
	if diff := cmp.Diff(want, resp.GetCluster(), protocmp.Transform()); diff != "" {
		t.Errorf("registered (-want +got):\n%s", diff)
	}
	scheds, err := sched.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(scheds) != 1 || scheds[0].GetName() != "aks-prod" || scheds[0].GetCluster() != "aks-prod" || scheds[0].GetCron() != "0 2 * * *" || scheds[0].GetRetentionDays() != 90 {
		t.Errorf("schedules after registering aks-prod: %v", scheds)
	}
	dev := &secureauditv1.Cluster{Name: "aks-dev", AgentAddress: "10.1.2.3:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
		Labels: map[string]string{"environment": "dev", "owner": "platform-team"}}
	if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: dev}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		change func(*secureauditv1.Cluster)
		code   codes.Code
		says   string
	}{
		{"taken name", func(*secureauditv1.Cluster) {}, codes.AlreadyExists, "registered already"},
		{"upper-case name", func(c *secureauditv1.Cluster) { c.Name = "AKS-Prod" }, codes.InvalidArgument, "cluster.name"},
		{"name too long", func(c *secureauditv1.Cluster) { c.Name = strings.Repeat("a", 64) }, codes.InvalidArgument, "cluster.name"},
		{"address without port", func(c *secureauditv1.Cluster) { c.Name, c.AgentAddress = "x1", "rbac-agent.internal" }, codes.InvalidArgument, "cluster.agent_address"},
		{"no address", func(c *secureauditv1.Cluster) { c.Name, c.AgentAddress = "x2", "" }, codes.InvalidArgument, "cluster.agent_address"},
		{"not a SPIFFE ID", func(c *secureauditv1.Cluster) { c.Name, c.AgentSpiffeId = "x3", "https://example.com/rbac-agent" }, codes.InvalidArgument, "cluster.agent_spiffe_id"},
		{"other trust domain", func(c *secureauditv1.Cluster) {
			c.Name, c.AgentSpiffeId = "x4", "spiffe://attacker.example/ns/secureaudit/sa/rbac-agent"
		}, codes.InvalidArgument, "trust domain secureaudit.local"},
		{"bad criticality", func(c *secureauditv1.Cluster) { c.Name, c.Labels["criticality"] = "x5", "extreme" }, codes.InvalidArgument, "criticality must be one of"},
		{"bad label key", func(c *secureauditv1.Cluster) { c.Name, c.Labels["Team Name"] = "x6", "a" }, codes.InvalidArgument, "cluster.labels"},
		{"bad tenant", func(c *secureauditv1.Cluster) { c.Name, c.EntraTenantId = "x7", "contoso" }, codes.InvalidArgument, "cluster.entra_tenant_id"},
		{"bad AKS resource ID", func(c *secureauditv1.Cluster) { c.Name, c.AksResourceId = "x8", "/subscriptions/s/resourceGroups/g" }, codes.InvalidArgument, "cluster.aks_resource_id"},
		{"bad cron", func(c *secureauditv1.Cluster) { c.Name, c.Schedule = "x9", "every day" }, codes.InvalidArgument, "schedule"},
		{"retention without schedule", func(c *secureauditv1.Cluster) { c.Name, c.Schedule = "x10", "" }, codes.InvalidArgument, "has none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := prod()
			tc.change(in)
			_, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: in})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %v, want %s saying %q", err, tc.code, tc.says)
			}
			if tc.code == codes.InvalidArgument {
				if _, err := st.GetCluster(ctx, in.GetName()); err == nil {
					t.Errorf("refused cluster %s was stored", in.GetName())
				}
			}
		})
	}
	// The refused cron left neither a cluster nor a schedule behind.
	if scheds, _ := sched.List(ctx); len(scheds) != 1 {
		t.Errorf("schedules after the refusals: %d, want 1", len(scheds))
	}

	// Replacing: the agent moved, the schedule changed; a refused schedule
	// leaves the previous registration and its schedule as they were.
	moved := prod()
	moved.AgentAddress, moved.Schedule = "10.9.9.9:8441", "@hourly"
	if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: moved, Replace: true}); err != nil {
		t.Fatal(err)
	}
	bad := prod()
	bad.AgentAddress, bad.Schedule = "10.6.6.6:8441", "whenever"
	if _, err := c.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: bad, Replace: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("replacing with a bad cron: %v, want InvalidArgument", err)
	}
	if got, err := st.GetCluster(ctx, "aks-prod"); err != nil || got.GetAgentAddress() != "10.9.9.9:8441" {
		t.Errorf("aks-prod after the replacements: %v, %v; want the agent at 10.9.9.9:8441", got, err)
	}
	if scheds, _ := sched.List(ctx); len(scheds) != 1 || scheds[0].GetCron() != "@hourly" {
		t.Errorf("schedules after the replacements: %v, want aks-prod's @hourly", scheds)
	}

	list := func(labels map[string]string) []string {
		t.Helper()
		resp, err := c.ListClusters(ctx, &secureauditv1.ListClustersRequest{Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range resp.GetClusters() {
			names = append(names, c.GetName())
		}
		return names
	}
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{nil, []string{"aks-dev", "aks-prod"}},
		{map[string]string{"owner": "platform-team"}, []string{"aks-dev", "aks-prod"}},
		{map[string]string{"environment": "prod"}, []string{"aks-prod"}},
		{map[string]string{"environment": "prod", "owner": "someone-else"}, nil},
		{map[string]string{"criticality": "critical"}, []string{"aks-prod"}},
	} {
		if got := list(tc.labels); !cmp.Equal(got, tc.want) {
			t.Errorf("clusters with labels %v: %v, want %v", tc.labels, got, tc.want)
		}
	}

	// GetCluster with its last audit.
	got, err := c.GetCluster(ctx, &secureauditv1.GetClusterRequest{Name: "aks-prod"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLastAudit() != nil {
		t.Errorf("last audit before any: %v", got.GetLastAudit())
	}
	a := &secureauditv1.Audit{Id: "00000000-0000-4000-8000-000000000001", Cluster: "aks-prod", State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, CreatedAt: timestamppb.Now()}
	if err := st.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err = c.GetCluster(ctx, &secureauditv1.GetClusterRequest{Name: "aks-prod"}); err != nil || got.GetLastAudit().GetId() != a.GetId() {
		t.Errorf("last audit: %v, %v; want %s", got.GetLastAudit(), err, a.GetId())
	}
	if _, err := c.GetCluster(ctx, &secureauditv1.GetClusterRequest{Name: "aks-nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown cluster: %v, want NotFound", err)
	}

	// Deregistering removes the cluster and its schedules, not its audits.
	if _, err := sched.Create(ctx, &secureauditv1.Schedule{Name: "prod-hourly", Cluster: "aks-prod", Cron: "@hourly"}); err != nil {
		t.Fatal(err)
	}
	dresp, err := c.DeregisterCluster(ctx, &secureauditv1.DeregisterClusterRequest{Name: "aks-prod"})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(dresp.GetRemovedSchedules(), []string{"aks-prod", "prod-hourly"}) {
		t.Errorf("removed schedules %v, want aks-prod and prod-hourly", dresp.GetRemovedSchedules())
	}
	if got := list(nil); !cmp.Equal(got, []string{"aks-dev"}) {
		t.Errorf("clusters after deregistering aks-prod: %v", got)
	}
	if scheds, _ := sched.List(ctx); len(scheds) != 0 {
		t.Errorf("schedules left: %v", scheds)
	}
	if _, err := st.GetAudit(ctx, a.GetId()); err != nil {
		t.Errorf("aks-prod's audit is gone: %v", err)
	}
	if _, err := c.DeregisterCluster(ctx, &secureauditv1.DeregisterClusterRequest{Name: "aks-prod"}); status.Code(err) != codes.NotFound {
		t.Errorf("second deregistration: %v, want NotFound", err)
	}

	// The evidence log holds each change that stood, naming who made it
	// and the agent; nothing for the refused ones.
	size, err := evlog.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := evlog.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	cli := identity.ID(identity.CLI).String()
	var recorded []string
	for _, e := range entries {
		if e.Control == "clusters" {
			recorded = append(recorded, e.Summary)
		}
	}
	wantRecorded := []string{
		"cluster aks-prod registered by " + cli + ": rbac-agent at rbac-agent.aks-prod.internal:8441 (spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent)",
		"cluster aks-dev registered by " + cli + ": rbac-agent at 10.1.2.3:8441 (spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent)",
		"cluster aks-prod re-registered by " + cli + ": rbac-agent at 10.9.9.9:8441 (spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent)",
		"cluster aks-prod deregistered by " + cli + ": rbac-agent at 10.9.9.9:8441 (spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent)",
	}
	if diff := cmp.Diff(wantRecorded, recorded); diff != "" {
		t.Errorf("evidence of the registry (-want +got):\n%s", diff)
	}
}
