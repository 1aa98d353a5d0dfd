package tenant_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/entra-agent/directory"
	"secureaudit.dev/services/entra-agent/tenant"
	"secureaudit.dev/services/entra-agent/tenanttest"
)

// TestCredentialCheckPresented serves the live source through a Monitor as
// the entra-agent does (the platform server over mTLS, the Monitor's
// result as its credential check) and reads the check as the orchestrator
// does, from the header of a health check: clean while requests name only
// the configured cluster, a violation naming cluster B once a Resolve
// named B, in the header's shape the orchestrator parses.
func TestCredentialCheckPresented(t *testing.T) {
	const clusterB = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-b/providers/Microsoft.ContainerService/managedClusters/aks-b"
	snap := loadExample(t)
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	snap.RoleAssignments = append(snap.RoleAssignments, &secureauditv1.AzureRoleAssignment{
		Id: clusterB + "/providers/Microsoft.Authorization/roleAssignments/agent-admin", PrincipalId: fake.AgentID,
		PrincipalType: "ServicePrincipal", RoleName: "Azure Kubernetes Service Cluster Admin Role", Scope: clusterB,
	})
	manifest, err := scopes.Manifest(identity.EntraAgent)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scope.Parse(manifest)
	if err != nil {
		t.Fatal(err)
	}
	declared := tenant.DeclaredFrom(m.Spec.Permissions)
	mon := tenant.NewMonitor(source(t, fake, tenant.Config{ClusterID: exampleCluster}), declared, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	mon.Check(ctx)

	p := rpctest.NewPKI(t)
	log := rpctest.Logger(t)
	v, err := validation.New(log)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing(identity.EntraAgent, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.NewServer(rpc.ServerConfig{
		Credentials: p.Credentials(t, identity.EntraAgent), Manifest: m, Logger: log, Tracer: tr.Provider, Validator: v,
		CredentialCheck: mon.Presented,
	}, func(s *grpc.Server) { secureauditv1.RegisterEntraServiceServer(s, directory.NewServer(log, mon)) })
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	conn := p.Dial(t, lis.Addr().String(), identity.EntraAgent, identity.Orchestrator)

	presented := func() (outcome, summary string) {
		t.Helper()
		var md metadata.MD
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
			t.Fatal(err)
		}
		ps, ok := rpc.ScopeFromHeader(md)
		if !ok {
			t.Fatalf("no scope presented: %v", md)
		}
		var c struct{ Outcome, Summary string }
		if err := json.Unmarshal([]byte(ps.Credential), &c); err != nil {
			t.Fatalf("credential check %q: %v", ps.Credential, err)
		}
		return c.Outcome, c.Summary
	}
	resolve := func(cluster string) {
		t.Helper()
		stream, err := secureauditv1.NewEntraServiceClient(conn).Resolve(ctx, &secureauditv1.ResolveRequest{
			AuditId: "8d2f9a3e-4b1c-4e7a-9f6d-2c5b8e1a7d40", Principals: examplePrincipals[:1], ClusterResourceId: cluster,
		})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
		}
	}
	resolve(exampleCluster)
	if outcome, summary := presented(); outcome != "pass" {
		t.Errorf("before a request named B: %s %s, want pass", outcome, summary)
	}
	resolve(clusterB)
	outcome, summary := presented()
	if outcome != "violation" || !strings.Contains(summary, "at AKS cluster(s) "+clusterB+":") || !strings.Contains(summary, "listClusterAdminCredential/action") {
		t.Errorf("after a request named B: %s %s, want a violation naming B and listClusterAdminCredential/action", outcome, summary)
	}
}
