package directory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/entra-agent/directory"
)

const auditID = "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"

// serve starts the real EntraService server (real manifest, mTLS, interceptors)
// on loopback and returns a client connected as caller.
func serve(t *testing.T, src directory.Source, caller string) secureauditv1.EntraServiceClient {
	t.Helper()
	manifest, err := scopes.Manifest(identity.EntraAgent)
	if err != nil {
		t.Fatal(err)
	}
	p := rpctest.NewPKI(t)
	srv := directory.NewServer(rpctest.Logger(t), src)
	addr := p.Serve(t, identity.EntraAgent, manifest, func(s *grpc.Server) {
		secureauditv1.RegisterEntraServiceServer(s, srv)
	})
	return secureauditv1.NewEntraServiceClient(p.Dial(t, addr, identity.EntraAgent, caller))
}

// resolve calls Resolve and returns every chunk received.
func resolve(t *testing.T, c secureauditv1.EntraServiceClient, principals ...*secureauditv1.Principal) ([]*secureauditv1.DirectoryChunk, error) {
	t.Helper()
	stream, err := c.Resolve(context.Background(), &secureauditv1.ResolveRequest{AuditId: auditID, Principals: principals})
	if err != nil {
		return nil, err
	}
	var chunks []*secureauditv1.DirectoryChunk
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, resp.GetChunk())
	}
}

func user(name string) *secureauditv1.Principal {
	return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: name}
}

func clientID(name string) *secureauditv1.Principal {
	return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: name}
}

func group(name string) *secureauditv1.Principal {
	return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: name}
}

// names summarizes chunks as readable names: users by UPN, groups and service
// principals by display name, unresolved principals by kind and name.
type names struct {
	Users, Groups, ServicePrincipals, Unresolved, RoleAssignments []string
}

func summarize(chunks []*secureauditv1.DirectoryChunk) names {
	var n names
	for _, c := range chunks {
		for _, u := range c.GetUsers() {
			n.Users = append(n.Users, u.GetUserPrincipalName())
		}
		for _, g := range c.GetGroups() {
			n.Groups = append(n.Groups, g.GetDisplayName())
		}
		for _, sp := range c.GetServicePrincipals() {
			n.ServicePrincipals = append(n.ServicePrincipals, sp.GetDisplayName())
		}
		for _, p := range c.GetUnresolved() {
			n.Unresolved = append(n.Unresolved, p.GetKind().String()+" "+p.GetName())
		}
		for _, a := range c.GetRoleAssignments() {
			n.RoleAssignments = append(n.RoleAssignments, a.GetPrincipalType()+" "+a.GetPrincipalId()+" "+a.GetRoleName())
		}
	}
	return n
}

// TestResolveExample resolves the principals the example cluster binds, from
// examples/directory.json, over loopback mTLS as the orchestrator.
// exampleSnapshot reads examples/directory.json as a message.
func exampleSnapshot(t *testing.T) *secureauditv1.DirectorySnapshot {
	t.Helper()
	data, err := os.ReadFile("../../../examples/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	var msg secureauditv1.DirectorySnapshot
	if err := protojson.Unmarshal(data, &msg); err != nil {
		t.Fatal(err)
	}
	return &msg
}

// TestResolveExample resolves principals of the example without its AKS
// cluster: the answer is what the principals lead to (TestResolveAzureRoutes
// adds the cluster).
func TestResolveExample(t *testing.T) {
	msg := exampleSnapshot(t)
	msg.AksCluster = nil
	snap, err := directory.New(msg)
	if err != nil {
		t.Fatal(err)
	}
	client := serve(t, snap, identity.Orchestrator)
	const domain = "@fabrikamcorp.onmicrosoft.com"
	tests := []struct {
		name string
		in   []*secureauditv1.Principal
		want names
	}{
		{
			name: "payments admins with a guest and a disabled member",
			in:   []*secureauditv1.Principal{group("c145efc9-e82b-46fe-b60b-a02a33b3a2c0")},
			want: names{
				// Sorted by object ID.
				Users:  []string{"alice_contoso.com#EXT#" + domain, "priya.raman" + domain, "marco.rossi" + domain},
				Groups: []string{"sg-aks-payments-admins"},
				// Marco's eligible assignment (PIM): the role assignments
				// of every object in the answer, eligible ones included.
				RoleAssignments: []string{"User f3c1fccf-d3d4-471a-be0e-d3f336dd87df Azure Kubernetes Service Cluster Admin Role"},
			},
		},
		{
			name: "platform ops through the nested SRE group",
			in:   []*secureauditv1.Principal{group("e97a7122-b22b-4cca-9229-80bd3b8f5453")},
			want: names{
				Users:             []string{"carol.ops" + domain, "omar.haddad" + domain, "lena.fischer" + domain},
				Groups:            []string{"sg-aks-sre-oncall", "sg-aks-platform-ops"},
				ServicePrincipals: []string{"sp-azdo-platform-deploy"},
				RoleAssignments: []string{
					"User 377e52a5-e3ca-4fd5-acf7-05eea622250f Azure Kubernetes Service Cluster Admin Role",
					"Group e97a7122-b22b-4cca-9229-80bd3b8f5453 Contributor",
				},
			},
		},
		{
			name: "every Entra subject the example cluster binds",
			in: []*secureauditv1.Principal{
				group("c145efc9-e82b-46fe-b60b-a02a33b3a2c0"),
				group("7b3fe355-f9da-4bc9-ab71-6dde6138092b"),
				group("fa72a3a8-71f0-42e8-8558-0106470d7f99"),
				group("e97a7122-b22b-4cca-9229-80bd3b8f5453"),
				group("bc5fa9b9-9b3e-495d-8eaa-d8f12ea67237"),
				user("ALICE_CONTOSO.COM#EXT#@fabrikamcorp.onmicrosoft.com"),
				user("carol.ops" + domain),
				user("aks-support"),
				group("system:masters"),
			},
			want: names{
				Users: []string{
					"jun.tanaka" + domain, "carol.ops" + domain, "omar.haddad" + domain, "sam.okafor" + domain,
					"alice_contoso.com#EXT#" + domain, "lena.fischer" + domain, "priya.raman" + domain, "marco.rossi" + domain,
				},
				Groups: []string{
					"sg-aks-sre-oncall", "sg-aks-payments-devs", "sg-aks-payments-admins",
					"sg-aks-platform-ops", "sg-aks-web-devs",
				},
				ServicePrincipals: []string{"app-web-content-sync", "sp-azdo-platform-deploy"},
				RoleAssignments: []string{
					"User 377e52a5-e3ca-4fd5-acf7-05eea622250f Azure Kubernetes Service Cluster Admin Role",
					"Group e97a7122-b22b-4cca-9229-80bd3b8f5453 Contributor",
					"User f3c1fccf-d3d4-471a-be0e-d3f336dd87df Azure Kubernetes Service Cluster Admin Role",
				},
				Unresolved: []string{
					"PRINCIPAL_KIND_USER aks-support",
					"PRINCIPAL_KIND_GROUP bc5fa9b9-9b3e-495d-8eaa-d8f12ea67237",
					"PRINCIPAL_KIND_GROUP system:masters",
				},
			},
		},
		{
			name: "workload identity by object id",
			in:   []*secureauditv1.Principal{user("d3a97b46-ae95-4600-9de4-05c2a7d555f8")},
			want: names{ServicePrincipals: []string{"id-github-deployer"}},
		},
		{
			name: "workload identities by client id, one deleted",
			in:   []*secureauditv1.Principal{clientID("478C0813-E243-4BCA-9AF3-63D4930FA261"), clientID("0d4b7e92-1f6a-4c8e-b3d5-9a2e7f1c4b60")},
			want: names{
				ServicePrincipals: []string{"id-github-deployer"},
				Unresolved:        []string{"PRINCIPAL_KIND_CLIENT_ID 0d4b7e92-1f6a-4c8e-b3d5-9a2e7f1c4b60"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := resolve(t, client, tt.in...)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(chunks) != 1 {
				t.Errorf("got %d chunks, want 1", len(chunks))
			}
			if diff := cmp.Diff(tt.want, summarize(chunks)); diff != "" {
				t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveAzureRoutes resolves one principal of the example with its AKS
// cluster: the answer also holds every route into the cluster through Azure
// alone (the admin group, expanded, and every assignment at, below or above
// the cluster whose role opens a route, whatever the role is called, with
// its principal), and leaves out assignments on other resources and roles
// that open none.
func TestResolveAzureRoutes(t *testing.T) {
	msg := exampleSnapshot(t)
	cluster := msg.GetAksCluster().GetId()
	rg := cluster[:strings.Index(cluster, "/providers/")]
	other := &secureauditv1.AzureRoleAssignment{
		Id: rg + "/providers/Microsoft.Storage/storageAccounts/st/providers/Microsoft.Authorization/roleAssignments/1", PrincipalId: "aae7442e-7b79-472c-ba09-161653394606",
		PrincipalType: "User", RoleName: "Owner", Scope: rg + "/providers/Microsoft.Storage/storageAccounts/st",
	}
	reader := &secureauditv1.AzureRoleAssignment{
		Id: cluster + "/providers/Microsoft.Authorization/roleAssignments/2", PrincipalId: "e67005c7-ae30-491e-afb9-f787b213b19c",
		PrincipalType: "User", RoleName: "Reader", Scope: cluster,
	}
	renamed := &secureauditv1.AzureRoleAssignment{
		Id: cluster + "/providers/Microsoft.Authorization/roleAssignments/3", PrincipalId: "f3c1fccf-d3d4-471a-be0e-d3f336dd87df",
		PrincipalType: "User", RoleName: "Kube viewers", Scope: cluster + "/namespaces/web", CustomRole: true,
		Permissions: []*secureauditv1.AzureRolePermission{{DataActions: []string{"Microsoft.ContainerService/managedClusters/*/read"}}},
	}
	msg.RoleAssignments = append(msg.RoleAssignments, other, reader, renamed)
	snap, err := directory.New(msg)
	if err != nil {
		t.Fatal(err)
	}
	const domain = "@fabrikamcorp.onmicrosoft.com"
	chunks, err := resolve(t, serve(t, snap, identity.Orchestrator), user("alice_contoso.com#EXT#"+domain))
	if err != nil {
		t.Fatal(err)
	}
	want := names{
		Users: []string{
			"jun.tanaka" + domain, "carol.ops" + domain, "dana.kowalski" + domain, "omar.haddad" + domain, "nina.berg" + domain,
			"alice_contoso.com#EXT#" + domain, "lena.fischer" + domain, "tom.weber" + domain, "priya.raman" + domain, "marco.rossi" + domain,
		},
		Groups:            []string{"sg-aks-cluster-admins", "sg-aks-sre-oncall", "sg-aks-platform-ops"},
		ServicePrincipals: []string{"sp-azdo-platform-deploy"},
		RoleAssignments: []string{
			"User 377e52a5-e3ca-4fd5-acf7-05eea622250f Azure Kubernetes Service Cluster Admin Role",
			"Group e97a7122-b22b-4cca-9229-80bd3b8f5453 Contributor",
			"User 9e2f6a18-7d3b-4c51-a0e4-3f8b1c6d2e97 Azure Kubernetes Service RBAC Writer",
			"User f3c1fccf-d3d4-471a-be0e-d3f336dd87df Kube viewers",
			"User c7a94f02-5e1b-4d86-b3f7-2a0e9d4c8b61 Fabrikam AKS Support Operator",
			"User f3c1fccf-d3d4-471a-be0e-d3f336dd87df Azure Kubernetes Service Cluster Admin Role",
		},
	}
	if diff := cmp.Diff(want, summarize(chunks)); diff != "" {
		t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(msg.GetAksCluster(), chunks[0].GetAksCluster(), protocmp.Transform()); diff != "" {
		t.Errorf("first chunk's cluster (-want +got):\n%s", diff)
	}
	// The first chunk presents the tenant and the AKS cluster the agent
	// reads: the orchestrator checks them against the cluster's
	// registration.
	if got := chunks[0]; got.GetTenantId() != msg.GetTenantId() || got.GetClusterResourceId() != cluster {
		t.Errorf("first chunk presents tenant %q and cluster %q, want %q and %q", got.GetTenantId(), got.GetClusterResourceId(), msg.GetTenantId(), cluster)
	}
	routes := map[string]string{}
	for _, a := range chunks[0].GetRoleAssignments() {
		routes[a.GetRoleName()] = fmt.Sprint(a.GetRoutes())
		if len(a.GetPermissions()) == 0 {
			t.Errorf("assignment of %s carries no permissions", a.GetRoleName())
		}
	}
	wantRoutes := map[string]string{
		"Azure Kubernetes Service Cluster Admin Role": "[AZURE_ROUTE_ADMIN_CREDENTIAL AZURE_ROUTE_RUN_COMMAND]",
		"Contributor":                          "[AZURE_ROUTE_ADMIN_CREDENTIAL AZURE_ROUTE_USER_CREDENTIAL AZURE_ROUTE_RUN_COMMAND AZURE_ROUTE_CLUSTER_WRITE]",
		"Azure Kubernetes Service RBAC Writer": "[AZURE_ROUTE_DATA_ACTIONS]",
		"Kube viewers":                         "[AZURE_ROUTE_DATA_ACTIONS]",
		"Fabrikam AKS Support Operator":        "[AZURE_ROUTE_RUN_COMMAND]",
	}
	if diff := cmp.Diff(wantRoutes, routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

// TestResolveChunked resolves a group of 1,200 users: three chunks arrive
// through the validation interceptors of both ends.
func TestResolveChunked(t *testing.T) {
	const n = 1200
	snap := &secureauditv1.DirectorySnapshot{TenantId: "38da03cf-8908-4b39-8df4-f889b1020287"}
	big := &secureauditv1.DirectoryGroup{Id: "00000000-0000-4000-9000-000000000000", DisplayName: "everyone"}
	for i := range n {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		snap.Users = append(snap.Users, &secureauditv1.DirectoryUser{Id: id, UserPrincipalName: fmt.Sprintf("user%d@example.com", i)})
		big.MemberIds = append(big.MemberIds, id)
	}
	snap.Groups = append(snap.Groups, big)
	src, err := directory.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := resolve(t, serve(t, src, identity.Orchestrator), group(big.Id))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	var got [][2]int
	prev := ""
	for _, c := range chunks {
		got = append(got, [2]int{len(c.GetUsers()), len(c.GetGroups())})
		for _, u := range c.GetUsers() {
			if u.GetId() <= prev {
				t.Fatalf("user %s arrived after %s: not sorted by id", u.GetId(), prev)
			}
			prev = u.GetId()
		}
	}
	if diff := cmp.Diff([][2]int{{500, 1}, {500, 0}, {200, 0}}, got); diff != "" {
		t.Errorf("chunk sizes (users, groups) mismatch (-want +got):\n%s", diff)
	}
}

// failing is a Source whose lookups fail.
type failing struct{ err error }

func (f failing) Resolve(context.Context, []*secureauditv1.Principal) (*directory.Result, error) {
	return nil, f.err
}

func TestResolveErrors(t *testing.T) {
	snap, err := directory.Load("../../../examples/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		src        directory.Source
		caller     string
		principals []*secureauditv1.Principal
		code       codes.Code
		msg        string // the exact status message, when set
	}{
		{name: "no directory configured", caller: identity.Orchestrator, principals: []*secureauditv1.Principal{user("a@example.com")},
			code: codes.FailedPrecondition, msg: "no directory source configured"},
		{name: "source failure is internal and not echoed", src: failing{errors.New("graph: secret token expired")}, caller: identity.Orchestrator,
			principals: []*secureauditv1.Principal{user("a@example.com")}, code: codes.Internal, msg: "internal"},
		{name: "caller other than the orchestrator", src: snap, caller: identity.RiskAgent,
			principals: []*secureauditv1.Principal{user("a@example.com")}, code: codes.PermissionDenied},
		{name: "no principals", src: snap, caller: identity.Orchestrator, code: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := resolve(t, serve(t, tt.src, tt.caller), tt.principals...)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("Resolve() code = %v (%v), want %v", got, err, tt.code)
			}
			if tt.msg != "" && status.Convert(err).Message() != tt.msg {
				t.Errorf("Resolve() message = %q, want %q", status.Convert(err).Message(), tt.msg)
			}
			if len(chunks) != 0 {
				t.Errorf("got %d chunks with the error, want none", len(chunks))
			}
		})
	}
}

// clusterSource is a ClusterSource that records the cluster it was asked
// about and presents it, as the live tenant does.
type clusterSource struct{ asked []string }

func (c *clusterSource) Resolve(ctx context.Context, ps []*secureauditv1.Principal) (*directory.Result, error) {
	return c.ResolveCluster(ctx, "", ps)
}

func (c *clusterSource) ResolveCluster(_ context.Context, cluster string, ps []*secureauditv1.Principal) (*directory.Result, error) {
	if strings.HasPrefix(cluster, "/subscriptions/prod/") { // as the live source refuses it
		return nil, &directory.ClusterError{ID: cluster, Reason: `subscription "prod" is not a subscription ID (a GUID)`}
	}
	if strings.HasSuffix(cluster, "/aks-full") { // as a full Monitor refuses it
		return nil, &directory.ClusterError{ID: cluster, Reason: "this entra-agent already checks its credential at 1024 AKS clusters", Full: true}
	}
	c.asked = append(c.asked, cluster)
	return &directory.Result{Unresolved: ps, ClusterResourceID: cluster}, nil
}

// TestResolveClusterOfRequest: the AKS cluster a request names reaches a
// source that can read any (the live tenant) over mTLS; a snapshot answers
// about its own cluster and presents it.
func TestResolveClusterOfRequest(t *testing.T) {
	const aks = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-b/providers/Microsoft.ContainerService/managedClusters/aks-b"
	src := &clusterSource{}
	client := serve(t, src, identity.Orchestrator)
	for _, cluster := range []string{aks, ""} {
		stream, err := client.Resolve(context.Background(), &secureauditv1.ResolveRequest{AuditId: auditID, Principals: []*secureauditv1.Principal{user("a@example.com")}, ClusterResourceId: cluster})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetChunk().GetClusterResourceId(); got != cluster {
			t.Errorf("asked about %q, the answer presents %q", cluster, got)
		}
	}
	if diff := cmp.Diff([]string{aks, ""}, src.asked); diff != "" {
		t.Errorf("clusters the source was asked about (-want +got):\n%s", diff)
	}
	// A request the contract refuses: not an AKS resource ID.
	stream, err := client.Resolve(context.Background(), &secureauditv1.ResolveRequest{AuditId: auditID, Principals: []*secureauditv1.Principal{user("a@example.com")}, ClusterResourceId: "/subscriptions/x/resourceGroups/rg"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a request naming a resource group as its cluster: %v, want InvalidArgument", err)
	}
	// One the contract lets through and the source refuses: InvalidArgument
	// naming the ID and why, not a bare Internal.
	const bad = "/subscriptions/prod/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
	stream, err = client.Resolve(context.Background(), &secureauditv1.ResolveRequest{AuditId: auditID, Principals: []*secureauditv1.Principal{user("a@example.com")}, ClusterResourceId: bad})
	if err == nil {
		_, err = stream.Recv()
	}
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), `"`+bad+`"`) || !strings.Contains(st.Message(), "not a subscription ID") {
		t.Errorf("a request naming a malformed AKS resource ID: %v, want InvalidArgument naming the ID and why", err)
	}
	// A new cluster beyond those the source keeps: ResourceExhausted,
	// naming the ID and the bound.
	const full = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-b/providers/Microsoft.ContainerService/managedClusters/aks-full"
	stream, err = client.Resolve(context.Background(), &secureauditv1.ResolveRequest{AuditId: auditID, Principals: []*secureauditv1.Principal{user("a@example.com")}, ClusterResourceId: full})
	if err == nil {
		_, err = stream.Recv()
	}
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), `"`+full+`"`) || !strings.Contains(st.Message(), "1024 AKS clusters") {
		t.Errorf("a request naming a cluster beyond the source's bound: %v, want ResourceExhausted naming the ID and the bound", err)
	}

	msg := exampleSnapshot(t)
	snap, err := directory.New(msg)
	if err != nil {
		t.Fatal(err)
	}
	stream, err = serve(t, snap, identity.Orchestrator).Resolve(context.Background(), &secureauditv1.ResolveRequest{AuditId: auditID, Principals: []*secureauditv1.Principal{user("a@example.com")}, ClusterResourceId: aks})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetChunk().GetClusterResourceId(); got != msg.GetAksCluster().GetId() {
		t.Errorf("a snapshot asked about %s presents %q, want its own cluster %q", aks, got, msg.GetAksCluster().GetId())
	}
}
