package tenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
	"secureaudit.dev/services/entra-agent/tenant"
	"secureaudit.dev/services/entra-agent/tenanttest"
)

const (
	exampleRG      = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-prod"
	exampleCluster = exampleRG + "/providers/Microsoft.ContainerService/managedClusters/aks-fabrikam-prod"
	// exampleIdentity is the ARM resource the tests give the example's
	// user-assigned managed identity id-github-deployer (service principal
	// d3a97b46-…): examples/directory.json names none, and the live source
	// reads a managed identity's federated credentials from ARM through it.
	exampleIdentity = exampleRG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-github-deployer"
)

func loadExample(t testing.TB) *secureauditv1.DirectorySnapshot {
	t.Helper()
	data, err := os.ReadFile("../../../examples/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	snap := &secureauditv1.DirectorySnapshot{}
	if err := protojson.Unmarshal(data, snap); err != nil {
		t.Fatal(err)
	}
	for _, sp := range snap.GetServicePrincipals() {
		if sp.GetId() == "d3a97b46-ae95-4600-9de4-05c2a7d555f8" {
			sp.ResourceId = exampleIdentity
		}
	}
	return snap
}

// source builds the tenant source against the fake: the real azidentity
// client-secret credential (https authority, no instance discovery) and the
// real Graph and ARM SDK clients.
func source(t testing.TB, fake *tenanttest.Server, cfg tenant.Config) *tenant.Source {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(fake.TenantID, "7d2c5e1a-0b3f-4a6d-9e8c-1f2a3b4c5d6e", "not-a-secret", &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: fake.AuthorityHost()}, Transport: fake.Client},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.GraphURL = fake.GraphURL()
	cfg.ARMURL = fake.URL
	cfg.HTTPClient = fake.Client
	src, err := tenant.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cred, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func user(n string) *secureauditv1.Principal {
	return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: n}
}

func group(n string) *secureauditv1.Principal {
	return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: n}
}

func clientID(n string) *secureauditv1.Principal {
	return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: n}
}

// examplePrincipals are every principal the example cluster names: its
// Entra groups (one deleted), users (one a guest by UPN in another case,
// one not in Entra), system:masters, and the workload identities' client
// IDs (one deleted).
var examplePrincipals = []*secureauditv1.Principal{
	group("c145efc9-e82b-46fe-b60b-a02a33b3a2c0"),
	group("7b3fe355-f9da-4bc9-ab71-6dde6138092b"),
	group("fa72a3a8-71f0-42e8-8558-0106470d7f99"),
	group("e97a7122-b22b-4cca-9229-80bd3b8f5453"),
	group("bc5fa9b9-9b3e-495d-8eaa-d8f12ea67237"),
	user("ALICE_CONTOSO.COM#EXT#@fabrikamcorp.onmicrosoft.com"),
	user("carol.ops@fabrikamcorp.onmicrosoft.com"),
	user("aks-support"),
	group("system:masters"),
	clientID("478c0813-e243-4bca-9af3-63d4930fa261"),
	clientID("0d4b7e92-1f6a-4c8e-b3d5-9a2e7f1c4b60"),
}

// offline is what the snapshot source answers for the same principals: the
// live source must agree with it exactly.
func offline(t testing.TB, snap *secureauditv1.DirectorySnapshot, ps []*secureauditv1.Principal) *directory.Result {
	t.Helper()
	s, err := directory.New(proto.CloneOf(snap))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Resolve(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var resultCmp = cmp.Options{
	protocmp.Transform(),
	// The live source carries the role definition's ID; a snapshot need not.
	protocmp.IgnoreFields(&secureauditv1.AzureRoleAssignment{}, "role_definition_id"),
	protocmp.SortRepeated(func(a, b string) bool { return a < b }),
}

func TestResolveExample(t *testing.T) {
	snap := loadExample(t)
	want := offline(t, snap, examplePrincipals)
	tests := []struct {
		name  string
		setup func(*tenanttest.Server)
		check func(t *testing.T, f *tenanttest.Server)
	}{
		{name: "one page each"},
		{
			name:  "pages of two members",
			setup: func(f *tenanttest.Server) { f.SetPageSize(2) },
			check: func(t *testing.T, f *tenanttest.Server) {
				// sg-aks-platform-ops has 3 members: two pages.
				if got := f.Requests("/v1.0/groups/e97a7122-b22b-4cca-9229-80bd3b8f5453/members"); got != 2 {
					t.Errorf("member pages of sg-aks-platform-ops = %d, want 2", got)
				}
			},
		},
		{
			name:  "throttled twice on every group",
			setup: func(f *tenanttest.Server) { f.Throttle("/v1.0/groups/", 2) },
			check: func(t *testing.T, f *tenanttest.Server) {
				if got := f.Requests("/v1.0/groups/"); got < 3 {
					t.Errorf("group requests = %d, want the throttled ones retried", got)
				}
			},
		},
		{
			name:  "ARM throttled once",
			setup: func(f *tenanttest.Server) { f.Throttle("/subscriptions/", 1) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
			if tt.setup != nil {
				tt.setup(fake)
			}
			got, err := source(t, fake, tenant.Config{ClusterID: exampleCluster}).Resolve(context.Background(), examplePrincipals)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, resultCmp); diff != "" {
				t.Errorf("live Resolve differs from the snapshot's (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, fake)
			}
		})
	}
}

// TestResolveClusterPerRequest: the AKS cluster a request names is read
// whatever the source was configured with (none, or another cluster), and
// answers as the example's snapshot does; without one, the configured
// cluster is read, and with none nothing is read from ARM.
func TestResolveClusterPerRequest(t *testing.T) {
	snap := loadExample(t)
	want := offline(t, snap, examplePrincipals)
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	ctx := context.Background()
	other := exampleRG + "/providers/Microsoft.ContainerService/managedClusters/aks-fabrikam-other"
	for _, configured := range []string{"", other} {
		src := source(t, fake, tenant.Config{ClusterID: configured})
		got, err := src.ResolveCluster(ctx, exampleCluster, examplePrincipals)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, resultCmp); diff != "" {
			t.Errorf("configured with %q, ResolveCluster of the example's cluster differs from the snapshot's (-want +got):\n%s", configured, diff)
		}
	}
	plain, err := source(t, fake, tenant.Config{}).Resolve(ctx, examplePrincipals)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Cluster != nil || len(plain.RoleAssignments) > 0 || len(plain.DenyAssignments) > 0 || plain.ClusterResourceID != "" {
		t.Errorf("without a cluster the source read ARM: cluster %v, %d role and %d deny assignments, presents %q",
			plain.Cluster, len(plain.RoleAssignments), len(plain.DenyAssignments), plain.ClusterResourceID)
	}
	if plain.TenantID != snap.GetTenantId() {
		t.Errorf("the source presents tenant %q, want the token's %q", plain.TenantID, snap.GetTenantId())
	}
	if _, err := source(t, fake, tenant.Config{}).ResolveCluster(ctx, exampleRG, examplePrincipals); err == nil || !strings.Contains(err.Error(), "managedClusters") {
		t.Errorf("ResolveCluster of a resource group: %v, want an error naming the resource ID's form", err)
	}
}

// TestResolveExactIdentities pins a few resolved identities field by field,
// so that agreement with the snapshot source cannot hide a shared mistake.
func TestResolveExactIdentities(t *testing.T) {
	fake := tenanttest.New(t, loadExample(t), tenant.ReadOnlyPermissions...)
	got, err := source(t, fake, tenant.Config{ClusterID: exampleCluster}).Resolve(context.Background(), []*secureauditv1.Principal{
		group("fa72a3a8-71f0-42e8-8558-0106470d7f99"),
		group("e97a7122-b22b-4cca-9229-80bd3b8f5453"),
		clientID("478C0813-E243-4BCA-9AF3-63D4930FA261"),
	})
	if err != nil {
		t.Fatal(err)
	}
	find := func(id string) any {
		for _, u := range got.Users {
			if u.GetId() == id {
				return u
			}
		}
		for _, sp := range got.ServicePrincipals {
			if sp.GetId() == id {
				return sp
			}
		}
		return nil
	}
	jun := &secureauditv1.DirectoryUser{
		Id: "347945a7-9733-48b0-a372-448400e8cb79", UserPrincipalName: "jun.tanaka@fabrikamcorp.onmicrosoft.com", DisplayName: "Jun Tanaka",
		UserType: secureauditv1.UserType_USER_TYPE_MEMBER, AccountEnabled: true, LastSignIn: mustTime(t, "2025-01-15T08:12:00Z"),
	}
	azdo := &secureauditv1.DirectoryServicePrincipal{
		Id: "9b6a2f4e-3c1d-4e8a-b7f2-5d0c8e1a4b37", AppId: "c2e8f1a7-6d4b-4f3e-9a1c-7b5d2e8f0a64", DisplayName: "sp-azdo-platform-deploy",
		ServicePrincipalType: "Application", PasswordCredentials: 2,
		Credentials: []*secureauditv1.ApplicationCredential{
			{
				Kind: secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET, KeyId: "5a1c7e3b-2d4f-4a6b-9c8d-0e1f2a3b4c5d", DisplayName: "azdo-service-connection-2024",
				Start: mustTime(t, "2024-04-02T09:30:00Z"), End: mustTime(t, "2025-04-02T09:30:00Z"),
			},
			{
				Kind: secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET, KeyId: "8f2e6d4c-1b3a-4e5f-8a7b-6c5d4e3f2a1b", DisplayName: "azdo-service-connection-2025",
				Start: mustTime(t, "2025-03-20T14:05:00Z"), End: mustTime(t, "2099-03-20T14:05:00Z"),
			},
		},
	}
	github := &secureauditv1.DirectoryServicePrincipal{
		Id: "d3a97b46-ae95-4600-9de4-05c2a7d555f8", AppId: "478c0813-e243-4bca-9af3-63d4930fa261", DisplayName: "id-github-deployer",
		ServicePrincipalType: "ManagedIdentity",
		ResourceId:           exampleIdentity,
		FederatedCredentials: []*secureauditv1.FederatedCredential{{
			Name:    "aks-fabrikam-prod-ci-github-deployer",
			Issuer:  "https://westeurope.oic.prod-aks.azure.com/38da03cf-8908-4b39-8df4-f889b1020287/6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/",
			Subject: "system:serviceaccount:ci:github-deployer",
		}},
	}
	for _, want := range []any{jun, azdo, github} {
		var id string
		switch w := want.(type) {
		case *secureauditv1.DirectoryUser:
			id = w.GetId()
		case *secureauditv1.DirectoryServicePrincipal:
			id = w.GetId()
		}
		if diff := cmp.Diff(want, find(id), protocmp.Transform()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
	// Every assignment reaching the cluster, whoever holds it: at the
	// subscription, the resource group, the cluster (a custom role, known
	// by its actions) and one of its namespaces (below the cluster, which
	// atScope() leaves out), each with the routes its role opens.
	wantRA := []string{
		"377e52a5-e3ca-4fd5-acf7-05eea622250f Azure Kubernetes Service Cluster Admin Role /subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45 [AZURE_ROUTE_ADMIN_CREDENTIAL AZURE_ROUTE_RUN_COMMAND]",
		"e97a7122-b22b-4cca-9229-80bd3b8f5453 Contributor " + exampleRG + " [AZURE_ROUTE_ADMIN_CREDENTIAL AZURE_ROUTE_USER_CREDENTIAL AZURE_ROUTE_RUN_COMMAND AZURE_ROUTE_CLUSTER_WRITE]",
		"9e2f6a18-7d3b-4c51-a0e4-3f8b1c6d2e97 Azure Kubernetes Service RBAC Writer " + exampleCluster + "/namespaces/payments [AZURE_ROUTE_DATA_ACTIONS]",
		"c7a94f02-5e1b-4d86-b3f7-2a0e9d4c8b61 Fabrikam AKS Support Operator " + exampleCluster + " [AZURE_ROUTE_RUN_COMMAND] custom",
		// PIM: Marco's eligible (not standing) assignment, read from
		// roleEligibilityScheduleInstances, with its end.
		"f3c1fccf-d3d4-471a-be0e-d3f336dd87df Azure Kubernetes Service Cluster Admin Role " + exampleCluster + " [AZURE_ROUTE_ADMIN_CREDENTIAL AZURE_ROUTE_RUN_COMMAND] eligible until 2027-06-30T00:00:00Z",
	}
	var gotRA []string
	for _, a := range got.RoleAssignments {
		line := fmt.Sprintf("%s %s %s %v", a.GetPrincipalId(), a.GetRoleName(), a.GetScope(), a.GetRoutes())
		if a.GetCustomRole() {
			line += " custom"
		}
		if a.GetEligible() {
			line += " eligible"
		}
		if a.GetEligibleUntil() != nil {
			line += " until " + a.GetEligibleUntil().AsTime().Format(time.RFC3339)
		}
		if a.GetActivated() {
			line += " activated"
		}
		gotRA = append(gotRA, line)
	}
	// PIM for Groups: Priya is an eligible member of the admin group, read
	// from Graph's eligibility schedule instances, and resolved.
	for _, g := range got.Groups {
		if g.GetId() == "2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25" {
			if diff := cmp.Diff([]string{"e67005c7-ae30-491e-afb9-f787b213b19c"}, g.GetEligibleMemberIds()); diff != "" {
				t.Errorf("eligible members of the admin group (-want +got):\n%s", diff)
			}
		}
	}
	if find("e67005c7-ae30-491e-afb9-f787b213b19c") == nil {
		t.Error("the admin group's eligible member is not resolved")
	}
	if len(got.Errors) > 0 {
		t.Errorf("lookup errors: %v", got.Errors)
	}
	if diff := cmp.Diff(wantRA, gotRA); diff != "" {
		t.Errorf("role assignments (-want +got):\n%s", diff)
	}
	wantCluster := &secureauditv1.AksCluster{
		Id: exampleCluster, Name: "aks-fabrikam-prod", KubernetesVersion: "1.35.0", LocalAccountsEnabled: true, KubernetesRbac: true,
		ManagedEntra: true, AzureRbac: true, AdminGroupObjectIds: []string{"2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25"},
		OidcIssuerEnabled: true, WorkloadIdentityEnabled: true, PodIdentityEnabled: true,
	}
	if diff := cmp.Diff(wantCluster, got.Cluster, protocmp.Transform()); diff != "" {
		t.Errorf("cluster (-want +got):\n%s", diff)
	}
	// The admin group's members and the assignees are resolved though no
	// binding names them.
	for _, id := range []string{"4b1d7e93-2c5a-4f08-9e6d-81a3c7f20b54", "9e2f6a18-7d3b-4c51-a0e4-3f8b1c6d2e97", "c7a94f02-5e1b-4d86-b3f7-2a0e9d4c8b61"} {
		if find(id) == nil {
			t.Errorf("user %s reaching the cluster through Azure alone is not in the answer", id)
		}
	}
}

// TestResolveManagedIdentity resolves user-assigned managed identities by
// client ID and through a group: Graph names the identity's ARM resource
// among the service principal's alternativeNames, and the real armmsi
// clients read the identity and its federated credentials from the fake's
// ARM.
func TestResolveManagedIdentity(t *testing.T) {
	const (
		otherSub = "/subscriptions/0c7d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f/resourceGroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
		ciPath   = otherSub + "id-ci"
	)
	oid := func(i int) string { return fmt.Sprintf("00000000-0000-4000-a000-%012d", i) }
	fc := func(i int) *secureauditv1.FederatedCredential {
		return &secureauditv1.FederatedCredential{
			Name:    fmt.Sprintf("ci-%d", i),
			Issuer:  "https://token.actions.githubusercontent.com",
			Subject: fmt.Sprintf("repo:fabrikam/app-%d:ref:refs/heads/main", i),
		}
	}
	mi := func(i int, name, resourceID string, creds ...*secureauditv1.FederatedCredential) *secureauditv1.DirectoryServicePrincipal {
		return &secureauditv1.DirectoryServicePrincipal{
			Id: oid(i), AppId: oid(100 + i), DisplayName: name, ServicePrincipalType: "ManagedIdentity",
			ResourceId: resourceID, FederatedCredentials: creds,
		}
	}
	var (
		// ci lives in another subscription than the cluster, with five
		// federated credentials.
		ci = mi(1, "id-ci", ciPath, fc(1), fc(2), fc(3), fc(4), fc(5))
		// member is reached through a group only.
		member = mi(2, "id-member", exampleRG+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-member", fc(6))
		// kubelet names no user-assigned identity in Graph.
		kubelet = mi(3, "aks-agentpool", "")
		// old and renewed hold the same resource ID: the identity was
		// deleted and created again, and Graph still lists the old one.
		old     = mi(4, "id-renewed", exampleRG+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-renewed", fc(7))
		renewed = mi(5, "id-renewed", old.ResourceId, fc(8))
		grp     = &secureauditv1.DirectoryGroup{Id: oid(10), DisplayName: "identities", MemberIds: []string{member.Id}}
	)
	snap := &secureauditv1.DirectorySnapshot{
		TenantId:          "38da03cf-8908-4b39-8df4-f889b1020287",
		Groups:            []*secureauditv1.DirectoryGroup{grp},
		ServicePrincipals: []*secureauditv1.DirectoryServicePrincipal{ci, member, kubelet, old, renewed},
		AksCluster:        &secureauditv1.AksCluster{Id: exampleCluster},
	}
	// bare is a service principal as Graph alone describes it.
	bare := func(sp *secureauditv1.DirectoryServicePrincipal) *secureauditv1.DirectoryServicePrincipal {
		sp = proto.CloneOf(sp)
		sp.ResourceId, sp.FederatedCredentials = "", nil
		return sp
	}
	type sps = []*secureauditv1.DirectoryServicePrincipal
	tests := []struct {
		name     string
		cfg      tenant.Config
		setup    func(*tenanttest.Server)
		in       []*secureauditv1.Principal
		want     sps
		errors   []string // lookups that failed
		requests map[string]int
	}{
		{
			name:  "by client ID, credentials in pages of two",
			cfg:   tenant.Config{ClusterID: exampleCluster},
			setup: func(f *tenanttest.Server) { f.SetPageSize(2) },
			in:    []*secureauditv1.Principal{clientID(ci.AppId), clientID(strings.ToUpper(kubelet.AppId))},
			want:  sps{ci, kubelet},
			// One GET of the identity, three pages of credentials.
			requests: map[string]int{ciPath: 4, ciPath + "/federatedIdentityCredentials": 3},
		},
		{
			name: "through a group",
			cfg:  tenant.Config{ClusterID: exampleCluster},
			in:   []*secureauditv1.Principal{group(grp.Id)},
			want: sps{member},
		},
		{
			name:     "throttled twice",
			cfg:      tenant.Config{ClusterID: exampleCluster},
			setup:    func(f *tenanttest.Server) { f.Throttle(ciPath, 2) },
			in:       []*secureauditv1.Principal{clientID(ci.AppId)},
			want:     sps{ci},
			requests: map[string]int{ciPath: 4},
		},
		{
			name:  "gone from ARM, still in Graph",
			cfg:   tenant.Config{ClusterID: exampleCluster},
			setup: func(f *tenanttest.Server) { f.DeleteIdentity(ciPath) },
			in:    []*secureauditv1.Principal{clientID(ci.AppId)},
			want:  sps{bare(ci)},
		},
		{
			name: "deleted and created again under the same name",
			cfg:  tenant.Config{ClusterID: exampleCluster},
			in:   []*secureauditv1.Principal{clientID(old.AppId), clientID(renewed.AppId)},
			want: sps{bare(old), renewed},
		},
		{
			name:     "ARM failing",
			cfg:      tenant.Config{ClusterID: exampleCluster, MaxRetries: 1},
			setup:    func(f *tenanttest.Server) { f.Fail(ciPath, http.StatusInternalServerError) },
			in:       []*secureauditv1.Principal{clientID(ci.AppId)},
			want:     sps{bare(ci)},
			errors:   []string{"managed identity " + ciPath},
			requests: map[string]int{ciPath: 2},
		},
		{
			name: "federated credentials failing",
			cfg:  tenant.Config{ClusterID: exampleCluster, MaxRetries: 1},
			setup: func(f *tenanttest.Server) {
				f.Fail(ciPath+"/federatedIdentityCredentials", http.StatusServiceUnavailable)
			},
			in:     []*secureauditv1.Principal{clientID(ci.AppId)},
			want:   sps{bare(ci)},
			errors: []string{"managed identity " + ciPath},
		},
		{
			name:     "without ARM",
			in:       []*secureauditv1.Principal{clientID(ci.AppId), group(grp.Id)},
			want:     sps{bare(ci), bare(member)},
			requests: map[string]int{"/subscriptions/": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
			if tt.setup != nil {
				tt.setup(fake)
			}
			got, err := source(t, fake, tt.cfg).Resolve(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.ServicePrincipals, protocmp.Transform()); diff != "" {
				t.Errorf("service principals (-want +got):\n%s", diff)
			}
			var lookups []string
			for _, e := range got.Errors {
				lookups = append(lookups, e.GetLookup())
			}
			if diff := cmp.Diff(tt.errors, lookups); diff != "" {
				t.Errorf("failed lookups (-want +got):\n%s", diff)
			}
			if got.Unresolved != nil {
				t.Errorf("unresolved = %v, want none", got.Unresolved)
			}
			for prefix, want := range tt.requests {
				if n := fake.Requests(prefix); n != want {
					t.Errorf("requests to %s = %d, want %d", prefix, n, want)
				}
			}
		})
	}
}

func TestResolvePartial(t *testing.T) {
	snap := loadExample(t)
	// A Reader assignment is no path to the cluster and is left out.
	snap.RoleAssignments = append(snap.RoleAssignments, &secureauditv1.AzureRoleAssignment{
		Id: exampleRG + "/providers/Microsoft.Authorization/roleAssignments/reader", PrincipalId: "be08c39a-57a4-470e-9c8e-a2d5dbad73e4",
		PrincipalType: "User", RoleName: "Reader", Scope: exampleRG,
	})
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	fake.Fail("/v1.0/groups/c145efc9-e82b-46fe-b60b-a02a33b3a2c0", http.StatusServiceUnavailable)
	src := source(t, fake, tenant.Config{ClusterID: exampleCluster, MaxRetries: 1})
	ps := []*secureauditv1.Principal{group("c145efc9-e82b-46fe-b60b-a02a33b3a2c0"), group("e97a7122-b22b-4cca-9229-80bd3b8f5453")}
	got, err := src.Resolve(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	var lookups []string
	for _, e := range got.Errors {
		lookups = append(lookups, e.GetLookup())
	}
	if diff := cmp.Diff([]string{"group c145efc9-e82b-46fe-b60b-a02a33b3a2c0"}, lookups); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if got.Unresolved != nil {
		t.Errorf("a failed lookup is not unresolved: %v", got.Unresolved)
	}
	// Retried once: two requests.
	if n := fake.Requests("/v1.0/groups/c145efc9-e82b-46fe-b60b-a02a33b3a2c0"); n != 2 {
		t.Errorf("requests for the failing group = %d, want 2 (one retry)", n)
	}
	// The other group resolved in full.
	want := offline(t, snap, ps[1:])
	want.Errors = got.Errors
	if diff := cmp.Diff(want, got, resultCmp); diff != "" {
		t.Errorf("partial Resolve (-want +got):\n%s", diff)
	}
	chunks := directory.Chunks(got)
	if !chunks[0].GetPartial() || len(chunks[0].GetErrors()) != 1 {
		t.Errorf("chunk does not say partial: %v", chunks[0])
	}
}

// TestResolveSignIns reads the last sign-in of 40 users reached through a
// group in batches of 15 (GET /users?$filter=id in (…)), following
// @odata.nextLink, and leaves it unset without AuditLog.Read.All.
func TestResolveSignIns(t *testing.T) {
	snap := bigDirectory(40, 1, 0)
	g := snap.Groups[0]
	g.MemberIds = nil
	for i, u := range snap.Users {
		g.MemberIds = append(g.MemberIds, u.GetId())
		// All three sign-in times, each for some users only: every third
		// user signs in only through a client (kubelogin), non-interactively.
		if i%3 != 0 {
			u.LastSignIn = timestamppb.New(time.Date(2025, 1, 1+i%28, 8, 0, 0, 0, time.UTC))
		}
		if i%3 == 0 || i%4 == 0 {
			u.LastNonInteractiveSignIn = timestamppb.New(time.Date(2026, 11, 1+i%28, 9, 30, 0, 0, time.UTC))
		}
		if i%2 == 0 {
			u.LastSuccessfulSignIn = timestamppb.New(time.Date(2026, 10, 1+i%28, 7, 15, 0, 0, time.UTC))
		}
	}
	unset := func(us []*secureauditv1.DirectoryUser) []*secureauditv1.DirectoryUser {
		var out []*secureauditv1.DirectoryUser
		for _, u := range us {
			u = proto.CloneOf(u)
			u.LastSignIn, u.LastNonInteractiveSignIn, u.LastSuccessfulSignIn = nil, nil, nil
			out = append(out, u)
		}
		return out
	}
	// Sorted by ID, the batches are users 0-14, 15-29 and 30-39.
	batch := func(from, to int) string {
		var ids []string
		for _, u := range snap.Users[from:to] {
			ids = append(ids, u.GetId())
		}
		return "signInActivity of users " + strings.Join(ids, ",")
	}
	tests := []struct {
		name     string
		roles    []string
		cfg      tenant.Config
		setup    func(*tenanttest.Server)
		want     []*secureauditv1.DirectoryUser
		errors   []string
		requests int // to /v1.0/users, -1: not checked
	}{
		{name: "three batches", roles: tenant.ReadOnlyPermissions, want: snap.Users, requests: 3},
		// 15 users in pages of 4 is 4 pages; 10 users is 3.
		{name: "pages of four", roles: tenant.ReadOnlyPermissions, setup: func(f *tenanttest.Server) { f.SetPageSize(4) }, want: snap.Users, requests: 11},
		{name: "throttled twice", roles: tenant.ReadOnlyPermissions, setup: func(f *tenanttest.Server) { f.Throttle("/v1.0/users", 2) }, want: snap.Users, requests: 5},
		// Batches in flight when the first 403 arrives are refused too.
		{name: "without AuditLog.Read.All", roles: []string{"User.Read.All", "GroupMember.Read.All", "PrivilegedEligibilitySchedule.Read.AzureADGroup", "PrivilegedAssignmentSchedule.Read.AzureADGroup"}, want: unset(snap.Users), requests: -1},
		{
			name:     "failing",
			roles:    tenant.ReadOnlyPermissions,
			cfg:      tenant.Config{MaxRetries: 1},
			setup:    func(f *tenanttest.Server) { f.Fail("/v1.0/users", http.StatusServiceUnavailable) },
			want:     unset(snap.Users),
			errors:   []string{batch(0, 15), batch(15, 30), batch(30, 40)},
			requests: 6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tenanttest.New(t, snap, tt.roles...)
			if tt.setup != nil {
				tt.setup(fake)
			}
			got, err := source(t, fake, tt.cfg).Resolve(context.Background(), []*secureauditv1.Principal{group(g.GetId())})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Users, protocmp.Transform()); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			var lookups []string
			for _, e := range got.Errors {
				lookups = append(lookups, e.GetLookup())
			}
			if diff := cmp.Diff(tt.errors, lookups); diff != "" {
				t.Errorf("failed lookups (-want +got):\n%s", diff)
			}
			if n := fake.Requests("/v1.0/users"); tt.requests >= 0 && n != tt.requests {
				t.Errorf("requests to /v1.0/users = %d, want %d", n, tt.requests)
			}
		})
	}
}

// TestFakeUsersIn checks the fake's `id in` filter on /users against
// Graph's limit of 15 values, through the real Graph client.
func TestFakeUsersIn(t *testing.T) {
	snap := bigDirectory(20, 0, 0)
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	quoted := func(n int) string {
		var ids []string
		for _, u := range snap.Users[:n] {
			ids = append(ids, "'"+u.GetId()+"'")
		}
		return "id in (" + strings.Join(ids, ",") + ")"
	}
	for _, tt := range []struct {
		filter string
		status int
	}{
		{quoted(15), http.StatusOK},
		{quoted(16), http.StatusBadRequest},
		{"startswith(displayName,'User')", http.StatusBadRequest},
		{"", http.StatusBadRequest},
	} {
		req, err := http.NewRequest(http.MethodGet, fake.GraphURL()+"/users?"+url.Values{"$filter": {tt.filter}, "$select": {"id"}}.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+fake.Token())
		resp, err := fake.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Value []map[string]any `json:"value"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%q: status %d, want %d", tt.filter, resp.StatusCode, tt.status)
		}
		if tt.status == http.StatusOK && (err != nil || len(body.Value) != 15) {
			t.Errorf("%q: %d users (%v), want 15", tt.filter, len(body.Value), err)
		}
	}
}

func TestExcessPermissions(t *testing.T) {
	tests := []struct {
		name  string
		roles []string
		want  []string
	}{
		{"read-only", tenant.ReadOnlyPermissions, nil},
		{"fewer", []string{"User.Read.All"}, nil},
		{"write access", []string{"User.Read.All", "Directory.ReadWrite.All", "GroupMember.Read.All", "AppRoleAssignment.ReadWrite.All"}, []string{"AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tenanttest.New(t, loadExample(t), tt.roles...)
			src := source(t, fake, tenant.Config{})
			got, err := src.ExcessPermissions(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("excess (-want +got):\n%s", diff)
			}
			res, err := src.Resolve(context.Background(), []*secureauditv1.Principal{user("carol.ops@fabrikamcorp.onmicrosoft.com")})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, res.ExcessPermissions); diff != "" {
				t.Errorf("Resolve's excess permissions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	fake := tenanttest.New(t, loadExample(t))
	cred, _ := azidentity.NewClientSecretCredential(fake.TenantID, "c", "s", nil)
	for _, cfg := range []tenant.Config{
		{GraphURL: "http://graph.example.com/v1.0"},
		{ClusterID: "/resourceGroups/rg"},
	} {
		if _, err := tenant.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cred, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// bigDirectory is a tenant of users users and groups groups of ten members
// each; group i also nests group i+1 for the first nest groups.
func bigDirectory(users, groups, nest int) *secureauditv1.DirectorySnapshot {
	snap := &secureauditv1.DirectorySnapshot{TenantId: "38da03cf-8908-4b39-8df4-f889b1020287"}
	uid := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
	gid := func(i int) string { return fmt.Sprintf("00000000-0000-4000-9000-%012d", i) }
	for i := range users {
		snap.Users = append(snap.Users, &secureauditv1.DirectoryUser{
			Id: uid(i), UserPrincipalName: fmt.Sprintf("user%d@example.com", i), DisplayName: fmt.Sprintf("User %d", i),
			UserType: secureauditv1.UserType_USER_TYPE_MEMBER, AccountEnabled: true,
		})
	}
	for i := range groups {
		g := &secureauditv1.DirectoryGroup{Id: gid(i), DisplayName: fmt.Sprintf("group %d", i), OwnerIds: []string{uid(i % users)}}
		for j := range 10 {
			g.MemberIds = append(g.MemberIds, uid((i*10+j)%users))
		}
		if i < nest {
			g.MemberIds = append(g.MemberIds, gid(i+1))
		}
		snap.Groups = append(snap.Groups, g)
	}
	return snap
}

// BenchmarkResolveLargeTenant resolves 20 groups (the first five nesting
// five more levels) and 20 users in a tenant of 50,000 users and 5,000
// groups, reporting the Graph requests per Resolve: they grow with what
// the principals lead to, not with the tenant. 157 per Resolve: 20 users,
// 20 groups, members and owners of 25 groups (50), the eligible members and
// the activations of those 25 groups (PIM for Groups, one request each:
// 50), and the sign-ins
// of the 248 users reached through groups in 17 batches of at most 15;
// read one user at a time, those sign-ins took 248 requests. Before PIM
// was read it was 107.
func BenchmarkResolveLargeTenant(b *testing.B) {
	snap := bigDirectory(50000, 5000, 5)
	fake := tenanttest.New(b, snap, tenant.ReadOnlyPermissions...)
	src := source(b, fake, tenant.Config{})
	var ps []*secureauditv1.Principal
	for i := range 20 {
		ps = append(ps, group(snap.Groups[i*250].GetId()), user(snap.Users[i*2500].GetUserPrincipalName()))
	}
	ps[0] = group(snap.Groups[0].GetId())
	before := fake.Requests("/v1.0/")
	var res *directory.Result
	b.ResetTimer()
	for range b.N {
		var err error
		if res, err = src.Resolve(context.Background(), ps); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(fake.Requests("/v1.0/")-before)/float64(b.N), "graph-requests/op")
	b.ReportMetric(float64(len(res.Users)), "users")
	b.ReportMetric(float64(len(res.Groups)), "groups")
}

func mustTime(t *testing.T, s string) *timestamppb.Timestamp {
	t.Helper()
	ts := &timestamppb.Timestamp{}
	if err := protojson.Unmarshal([]byte(`"`+s+`"`), ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestExport exports the example's principals from the fake tenant, loads
// the file as the offline source, and checks that it answers exactly as the
// original snapshot does; a failing lookup stops the export.
func TestExport(t *testing.T) {
	snap := loadExample(t)
	// A deny assignment travels with the export (compared below through
	// the exported snapshot's answer).
	snap.DenyAssignments = []*secureauditv1.AzureDenyAssignment{{
		Id: exampleRG + "/providers/Microsoft.Authorization/denyAssignments/6f5e4d3c-2b1a-4098-8e7d-6c5b4a3f2e1d", Name: "stack", Scope: exampleRG,
		Permissions:  []*secureauditv1.AzureRolePermission{{Actions: []string{"Microsoft.ContainerService/managedClusters/runCommand/action"}}},
		PrincipalIds: []string{"00000000-0000-0000-0000-000000000000"},
	}}
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	src := source(t, fake, tenant.Config{ClusterID: exampleCluster})
	path := filepath.Join(t.TempDir(), "directory.json")
	var warn strings.Builder
	n, err := tenant.Export(context.Background(), src, examplePrincipals, "", path, false, &warn)
	if err != nil {
		t.Fatal(err)
	}
	// The example's 8 users and 5 groups reached through bindings, and
	// through Azure alone: the admin group sg-aks-cluster-admins with Dana,
	// Nina (namespace-scoped RBAC Writer) and Tom (custom role); and
	// Marco's eligible assignment (PIM; Priya, the admin group's eligible
	// member, is among the example's users already).
	if want := (tenant.Counts{Users: 11, Groups: 6, ServicePrincipals: 3, RoleAssignments: 5}); n != want {
		t.Errorf("counts = %+v, want %+v", n, want)
	}
	wantWarn := "not in the directory: USER aks-support\n" +
		"not in the directory: GROUP bc5fa9b9-9b3e-495d-8eaa-d8f12ea67237\n" +
		"not in the directory: GROUP system:masters\n" +
		"not in the directory: CLIENT_ID 0d4b7e92-1f6a-4c8e-b3d5-9a2e7f1c4b60\n"
	if diff := cmp.Diff(wantWarn, warn.String()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	exported, err := directory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if exported.TenantID() != snap.GetTenantId() {
		t.Errorf("tenant = %s, want %s", exported.TenantID(), snap.GetTenantId())
	}
	got, err := exported.Resolve(context.Background(), examplePrincipals)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(offline(t, snap, examplePrincipals), got, resultCmp); diff != "" {
		t.Errorf("exported snapshot answers differently (-want +got):\n%s", diff)
	}

	fake.Fail("/v1.0/groups/7b3fe355-f9da-4bc9-ab71-6dde6138092b", http.StatusForbidden)
	partial := filepath.Join(t.TempDir(), "partial.json")
	if _, err := tenant.Export(context.Background(), src, examplePrincipals, "", partial, false, io.Discard); err == nil || !strings.Contains(err.Error(), "1 lookups failed") {
		t.Errorf("partial export error = %v, want 1 lookups failed", err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("a partial export left %s behind", partial)
	}
}

// TestCheckCredential proves the agent's own credential against the
// manifest through the real clients: Graph permissions in the token beyond
// the declared ones, and Azure roles assigned to the agent (its token's
// oid) that allow more than declared operations and reads, are violations.
func TestCheckCredential(t *testing.T) {
	declared := tenant.Declared{
		Graph: []string{"User.Read.All", "GroupMember.Read.All", "Application.Read.All", "AuditLog.Read.All"},
		ARM:   []string{"Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleDefinitions/read", "Microsoft.ContainerService/managedClusters/read"},
	}
	assign := func(snap *secureauditv1.DirectorySnapshot, agent, role, scope string) {
		snap.RoleAssignments = append(snap.RoleAssignments, &secureauditv1.AzureRoleAssignment{
			Id: scope + "/providers/Microsoft.Authorization/roleAssignments/agent-" + strings.ReplaceAll(role, " ", ""), PrincipalId: agent,
			PrincipalType: "ServicePrincipal", RoleName: role, Scope: scope,
		})
	}
	tests := []struct {
		name     string
		roles    []string
		assigned []string // roles assigned to the agent on the resource group
		outcome  string
		findings []string
	}{
		{name: "Reader and the declared Graph permissions", roles: declared.Graph, assigned: []string{"Reader"}, outcome: "pass"},
		{name: "a Graph permission beyond the manifest", roles: append(slices.Clone(declared.Graph), "Directory.ReadWrite.All"), assigned: []string{"Reader"}, outcome: "violation",
			findings: []string{"Graph application permission Directory.ReadWrite.All is not declared"}},
		{name: "Contributor on the resource group", roles: declared.Graph, assigned: []string{"Reader", "Contributor"}, outcome: "violation",
			findings: []string{`Azure role "Contributor" at ` + exampleRG + " allows *"}},
		{name: "AKS Cluster User Role lists credentials", roles: declared.Graph, assigned: []string{"Azure Kubernetes Service Cluster User Role"}, outcome: "violation",
			findings: []string{`Azure role "Azure Kubernetes Service Cluster User Role" at ` + exampleRG + " allows Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := loadExample(t)
			fake := tenanttest.New(t, snap, tt.roles...)
			for _, role := range tt.assigned {
				assign(snap, fake.AgentID, role, exampleRG)
			}
			got := source(t, fake, tenant.Config{ClusterID: exampleCluster}).CheckCredential(context.Background(), declared)
			if got.Outcome != tt.outcome {
				t.Errorf("outcome = %q (%s), want %q", got.Outcome, got.Summary, tt.outcome)
			}
			if diff := cmp.Diff(tt.findings, got.Findings); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolvePIM reads Privileged Identity Management through the real
// clients: eligible role assignments (ARM roleEligibilityScheduleInstances)
// are listed as eligible and never as role assignments, an active
// assignment that is a PIM activation (roleAssignmentScheduleInstances,
// assignmentType Activated) is marked activated while a standing one is
// not, and PIM for Groups' eligible members (Graph) need
// PrivilegedEligibilitySchedule.Read.AzureADGroup and its activations
// PrivilegedAssignmentSchedule.Read.AzureADGroup: without either the answer
// is partial with one lookup error, whatever the number of groups.
func TestResolvePIM(t *testing.T) {
	const adminGroup = "2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25"
	without := func(perm string) []string {
		return slices.DeleteFunc(slices.Clone(tenant.ReadOnlyPermissions), func(p string) bool { return p == perm })
	}
	const jun = "347945a7-9733-48b0-a372-448400e8cb79"
	const omar = "6ac5450f-9150-41ac-9b01-6f1afdb8df6c"
	tests := []struct {
		name           string
		roles          []string
		eligibleGroup  []string
		activatedGroup []string
		eligibleOwners []string          // PIM for Groups' eligible owners of the admin group
		ends           map[string]string // activation ends of the admin group's members
		errors         []string
	}{
		{name: "with the PIM for Groups permissions", roles: tenant.ReadOnlyPermissions, eligibleGroup: []string{"e67005c7-ae30-491e-afb9-f787b213b19c"}, activatedGroup: []string{jun}, eligibleOwners: []string{omar}, ends: map[string]string{jun: "2026-12-07T16:30:00Z"}},
		{name: "without the eligibility permission", roles: without("PrivilegedEligibilitySchedule.Read.AzureADGroup"), activatedGroup: []string{jun}, ends: map[string]string{jun: "2026-12-07T16:30:00Z"}, errors: []string{"eligible members (PIM for Groups)"}},
		{name: "without the assignment permission", roles: without("PrivilegedAssignmentSchedule.Read.AzureADGroup"), eligibleGroup: []string{"e67005c7-ae30-491e-afb9-f787b213b19c"}, eligibleOwners: []string{omar}, errors: []string{"activated members (PIM for Groups)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := loadExample(t)
			snap.RoleAssignments = append(snap.RoleAssignments, &secureauditv1.AzureRoleAssignment{
				Id:          exampleCluster + "/providers/Microsoft.Authorization/roleAssignments/5e0c9a7b-1d2f-4a3b-8c4d-6e7f8a9b0c1d",
				PrincipalId: "be08c39a-57a4-470e-9c8e-a2d5dbad73e4", PrincipalType: "User", RoleName: "Owner", Scope: exampleCluster,
				Activated: true,
			})
			for _, g := range snap.GetGroups() {
				if g.GetId() == adminGroup {
					g.ActivatedMemberIds = []string{jun} // Jun's membership is a PIM activation
					g.ActivationEnds = map[string]*timestamppb.Timestamp{jun: timestamppb.New(time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC))}
					g.EligibleOwnerIds = []string{omar} // Omar may activate ownership
				}
			}
			fake := tenanttest.New(t, snap, tt.roles...)
			got, err := source(t, fake, tenant.Config{ClusterID: exampleCluster}).Resolve(context.Background(), []*secureauditv1.Principal{group("fa72a3a8-71f0-42e8-8558-0106470d7f99")})
			if err != nil {
				t.Fatal(err)
			}
			state := map[string]string{}
			for _, a := range got.RoleAssignments {
				switch {
				case a.GetEligible():
					state[a.GetPrincipalId()+" "+a.GetRoleName()] = "eligible"
				case a.GetActivated():
					state[a.GetPrincipalId()+" "+a.GetRoleName()] = "activated"
				default:
					state[a.GetPrincipalId()+" "+a.GetRoleName()] = "standing"
				}
			}
			want := map[string]string{
				"377e52a5-e3ca-4fd5-acf7-05eea622250f Azure Kubernetes Service Cluster Admin Role": "standing",
				"e97a7122-b22b-4cca-9229-80bd3b8f5453 Contributor":                                 "standing",
				"9e2f6a18-7d3b-4c51-a0e4-3f8b1c6d2e97 Azure Kubernetes Service RBAC Writer":        "standing",
				"c7a94f02-5e1b-4d86-b3f7-2a0e9d4c8b61 Fabrikam AKS Support Operator":               "standing",
				"f3c1fccf-d3d4-471a-be0e-d3f336dd87df Azure Kubernetes Service Cluster Admin Role": "eligible",
				"be08c39a-57a4-470e-9c8e-a2d5dbad73e4 Owner":                                       "activated",
			}
			if diff := cmp.Diff(want, state); diff != "" {
				t.Errorf("assignments (-want +got):\n%s", diff)
			}
			if n := fake.Requests(exampleCluster + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances"); n != 1 {
				t.Errorf("roleEligibilityScheduleInstances listed %d times, want 1", n)
			}
			var eligible, activated, owners []string
			var ends map[string]string
			for _, g := range got.Groups {
				if g.GetId() == adminGroup {
					eligible, activated, owners = g.GetEligibleMemberIds(), g.GetActivatedMemberIds(), g.GetEligibleOwnerIds()
					for m, end := range g.GetActivationEnds() {
						if ends == nil {
							ends = map[string]string{}
						}
						ends[m] = end.AsTime().Format(time.RFC3339)
					}
				}
			}
			if diff := cmp.Diff(tt.eligibleOwners, owners); diff != "" {
				t.Errorf("eligible owners of the admin group (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ends, ends); diff != "" {
				t.Errorf("activation ends (-want +got):\n%s", diff)
			}
			if tt.eligibleOwners != nil && !slices.ContainsFunc(got.Users, func(u *secureauditv1.DirectoryUser) bool { return u.GetId() == omar }) {
				t.Error("the eligible owner was not resolved as a user")
			}
			if diff := cmp.Diff(tt.eligibleGroup, eligible); diff != "" {
				t.Errorf("eligible members of the admin group (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.activatedGroup, activated); diff != "" {
				t.Errorf("activated members of the admin group (-want +got):\n%s", diff)
			}
			var lookups []string
			for _, e := range got.Errors {
				_, what, _ := strings.Cut(e.GetLookup(), "/")
				lookups = append(lookups, what)
				if !strings.Contains(e.GetMessage(), "PrivilegedEligibilitySchedule.Read.AzureADGroup") && !strings.Contains(e.GetMessage(), "PrivilegedAssignmentSchedule.Read.AzureADGroup") {
					t.Errorf("error %q does not name the missing permission", e.GetMessage())
				}
			}
			if diff := cmp.Diff(tt.errors, lookups); diff != "" {
				t.Errorf("failed lookups (-want +got):\n%s", diff)
			}
			if n := fake.Requests("/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"); n == 0 {
				t.Error("PIM for Groups was not asked")
			}
		})
	}
}

// TestNotActionsThroughARM reads custom role definitions through the real
// role definitions client: ARM subtracts a block's notActions, so a role
// with '*' and listClusterAdminCredential among its notActions opens no
// admin-credential route, and one without every cluster and
// authorization operation is no route at all (its assignment is left
// out).
func TestNotActionsThroughARM(t *testing.T) {
	snap := loadExample(t)
	def := func(n string) string {
		return "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/providers/Microsoft.Authorization/roleDefinitions/" + n
	}
	snap.RoleAssignments = append(snap.RoleAssignments,
		&secureauditv1.AzureRoleAssignment{
			Id: exampleCluster + "/providers/Microsoft.Authorization/roleAssignments/1f0e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", PrincipalId: "be08c39a-57a4-470e-9c8e-a2d5dbad73e4", PrincipalType: "User",
			RoleName: "Everything but the admin credential", Scope: exampleCluster, CustomRole: true, RoleDefinitionId: def("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
			Permissions: []*secureauditv1.AzureRolePermission{{Actions: []string{"*"}, NotActions: []string{"Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"}}},
		},
		&secureauditv1.AzureRoleAssignment{
			Id: exampleCluster + "/providers/Microsoft.Authorization/roleAssignments/2e1f0d3c-5b4a-4978-9786-b5c4d3e2f1a0", PrincipalId: "6ac5450f-9150-41ac-9b01-6f1afdb8df6c", PrincipalType: "User",
			RoleName: "Everything but the cluster", Scope: exampleCluster, CustomRole: true, RoleDefinitionId: def("7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"),
			Permissions: []*secureauditv1.AzureRolePermission{{Actions: []string{"*"}, NotActions: []string{"Microsoft.ContainerService/*", "Microsoft.Authorization/*"}}},
		},
	)
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	got, err := source(t, fake, tenant.Config{ClusterID: exampleCluster}).Resolve(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{}
	for _, a := range got.RoleAssignments {
		routes[a.GetRoleName()] = fmt.Sprint(a.GetRoutes())
	}
	if r, ok := routes["Everything but the admin credential"]; !ok || r != "[AZURE_ROUTE_USER_CREDENTIAL AZURE_ROUTE_RUN_COMMAND AZURE_ROUTE_CLUSTER_WRITE AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE]" {
		t.Errorf("'*' without listClusterAdminCredential: routes %q (kept %v), want every route but the admin credential", r, ok)
	}
	if r, ok := routes["Everything but the cluster"]; ok {
		t.Errorf("'*' without the cluster and authorization operations kept with routes %s", r)
	}
	if fake.Requests(def("7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e")) != 1 {
		t.Error("the second role's definition was not read through ARM")
	}
}

// TestCertificateCredentials counts an application's certificates
// (keyCredentials, read through the Graph SDK; the keys are never kept)
// beside its secrets.
func TestCertificateCredentials(t *testing.T) {
	snap := loadExample(t)
	for _, sp := range snap.GetServicePrincipals() {
		if sp.GetId() == "9b6a2f4e-3c1d-4e8a-b7f2-5d0c8e1a4b37" {
			sp.CertificateCredentials = 2
		}
	}
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	got, err := source(t, fake, tenant.Config{}).Resolve(context.Background(), []*secureauditv1.Principal{group("e97a7122-b22b-4cca-9229-80bd3b8f5453")})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range got.ServicePrincipals {
		if sp.GetId() == "9b6a2f4e-3c1d-4e8a-b7f2-5d0c8e1a4b37" {
			if sp.GetPasswordCredentials() != 2 || sp.GetCertificateCredentials() != 2 {
				t.Errorf("sp-azdo-platform-deploy: %d secrets, %d certificates; want 2 and 2", sp.GetPasswordCredentials(), sp.GetCertificateCredentials())
			}
			return
		}
	}
	t.Fatal("sp-azdo-platform-deploy not resolved")
}

// TestCredentialMetadata reads, through the SDK, the validity of secrets
// and certificates on an application and on its service principal: kind,
// key ID, display name, start and end, sorted by kind then key ID, with the
// counts agreeing; the hint Graph gives every secret is kept nowhere in the
// result.
func TestCredentialMetadata(t *testing.T) {
	snap := loadExample(t)
	const azdo = "9b6a2f4e-3c1d-4e8a-b7f2-5d0c8e1a4b37"
	onSP := &secureauditv1.ApplicationCredential{
		Kind: secureauditv1.CredentialKind_CREDENTIAL_KIND_CERTIFICATE, KeyId: "0b1c2d3e-4f5a-4b6c-8d7e-8f9a0b1c2d3e", DisplayName: "CN=sp-signing",
		Start: mustTime(t, "2026-01-01T00:00:00Z"), End: mustTime(t, "2027-01-01T00:00:00Z"), OnServicePrincipal: true,
	}
	appCert := &secureauditv1.ApplicationCredential{
		Kind: secureauditv1.CredentialKind_CREDENTIAL_KIND_CERTIFICATE, KeyId: "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", DisplayName: "CN=azdo",
		Start: mustTime(t, "2025-06-01T12:00:00.5Z"), End: mustTime(t, "2026-06-01T12:00:00Z"),
	}
	var want *secureauditv1.DirectoryServicePrincipal
	for _, sp := range snap.GetServicePrincipals() {
		if sp.GetId() == azdo {
			sp.Credentials = append(sp.Credentials, onSP, appCert)
			sp.CertificateCredentials = 2
			want = proto.CloneOf(sp)
		}
	}
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	got, err := source(t, fake, tenant.Config{}).Resolve(context.Background(), []*secureauditv1.Principal{group("e97a7122-b22b-4cca-9229-80bd3b8f5453")})
	if err != nil {
		t.Fatal(err)
	}
	directory.SortCredentials(want.Credentials)
	if !slices.ContainsFunc(got.ServicePrincipals, func(sp *secureauditv1.DirectoryServicePrincipal) bool {
		if sp.GetId() != azdo {
			return false
		}
		if diff := cmp.Diff(want.GetCredentials(), sp.GetCredentials(), protocmp.Transform()); diff != "" {
			t.Errorf("credentials (-want +got):\n%s", diff)
		}
		if sp.GetPasswordCredentials() != 2 || sp.GetCertificateCredentials() != 2 {
			t.Errorf("counts: %d secrets, %d certificates; want 2 and 2", sp.GetPasswordCredentials(), sp.GetCertificateCredentials())
		}
		return true
	}) {
		t.Fatal("sp-azdo-platform-deploy not resolved")
	}
	for _, sp := range got.ServicePrincipals {
		data, err := protojson.Marshal(sp)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), tenanttest.Hint) {
			t.Errorf("%s: the result holds the secret's hint %q: %s", sp.GetId(), tenanttest.Hint, data)
		}
	}
}

// TestCredentialCountsChecked: a directory snapshot whose listed
// credentials disagree with its counts is refused, naming the field.
func TestCredentialCountsChecked(t *testing.T) {
	snap := loadExample(t)
	for _, sp := range snap.GetServicePrincipals() {
		if sp.GetId() == "9b6a2f4e-3c1d-4e8a-b7f2-5d0c8e1a4b37" {
			sp.PasswordCredentials = 3
		}
	}
	_, err := directory.New(snap)
	if err == nil || !strings.Contains(err.Error(), "service_principals[2].credentials: 2 secret(s) and 0 certificate(s) listed, but password_credentials is 3") {
		t.Fatalf("err = %v, want the count mismatch named", err)
	}
}

// TestDenyAssignmentsThroughARM reads the deny assignments at, above and
// below the cluster's scope through the SDK's DenyAssignmentsClient
// against the fake: those on the cluster's chain are kept with their
// permissions, principals (Everyone as the all-zero ID), excluded
// principals and doNotApplyToChildScopes, one on another resource group
// is not, the group a deny assignment excludes is read with its members,
// and the offline snapshot source answers the same.
func TestDenyAssignmentsThroughARM(t *testing.T) {
	snap := loadExample(t)
	const oncall = "5d8a06c1-fd90-4ac2-83c5-6182957a6376" // sg-aks-sre-oncall
	stack := &secureauditv1.AzureDenyAssignment{
		Id:   exampleRG + "/providers/Microsoft.Authorization/denyAssignments/3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98",
		Name: "Deny credentials (deployment stack aks-guard)", Scope: exampleRG,
		Permissions: []*secureauditv1.AzureRolePermission{{Actions: []string{
			"Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
			"Microsoft.ContainerService/managedClusters/runCommand/action",
		}}},
		PrincipalIds:        []string{"00000000-0000-0000-0000-000000000000"},
		ExcludePrincipalIds: []string{oncall},
	}
	secrets := &secureauditv1.AzureDenyAssignment{
		Id:   exampleCluster + "/providers/Microsoft.Authorization/denyAssignments/4d3c2b1a-0a9f-4e7d-8c6b-5f4e3d2c1b0a",
		Name: "No secrets for Nina", Scope: exampleCluster, DoesNotApplyToChildScopes: true,
		Permissions:  []*secureauditv1.AzureRolePermission{{DataActions: []string{"Microsoft.ContainerService/managedClusters/secrets/*"}}},
		PrincipalIds: []string{"9e2f6a18-7d3b-4c51-a0e4-3f8b1c6d2e97"},
	}
	other := &secureauditv1.AzureDenyAssignment{
		Id:   "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-other/providers/Microsoft.Authorization/denyAssignments/5e4d3c2b-1a0b-4f8e-9d7c-6a5f4e3d2c1b",
		Name: "Another resource group", Scope: "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-other",
		Permissions:  []*secureauditv1.AzureRolePermission{{Actions: []string{"*"}}},
		PrincipalIds: []string{"00000000-0000-0000-0000-000000000000"},
	}
	snap.DenyAssignments = []*secureauditv1.AzureDenyAssignment{secrets, other, stack}
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	got, err := source(t, fake, tenant.Config{ClusterID: exampleCluster}).Resolve(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []*secureauditv1.AzureDenyAssignment{stack, secrets}
	if diff := cmp.Diff(want, got.DenyAssignments, protocmp.Transform()); diff != "" {
		t.Errorf("deny assignments (-want +got):\n%s", diff)
	}
	if n := fake.Requests("/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-prod/providers/Microsoft.ContainerService/managedClusters/aks-fabrikam-prod/providers/Microsoft.Authorization/denyAssignments"); n != 1 {
		t.Errorf("deny assignments listed %d times at the cluster's scope, want 1", n)
	}
	if !slices.ContainsFunc(got.Groups, func(g *secureauditv1.DirectoryGroup) bool { return g.GetId() == oncall && len(g.GetMemberIds()) > 0 }) {
		t.Errorf("the excluded group %s was not read with its members", oncall)
	}
	if diff := cmp.Diff(offline(t, snap, nil).DenyAssignments, got.DenyAssignments, protocmp.Transform()); diff != "" {
		t.Errorf("offline snapshot source disagrees (-offline +live):\n%s", diff)
	}
	if c := directory.Chunks(got)[0]; len(c.GetDenyAssignments()) != 2 {
		t.Errorf("first chunk carries %d deny assignments, want 2", len(c.GetDenyAssignments()))
	}
}

// TestGroupAssignmentMembersCredentials: a service principal that reaches
// the cluster only as a member of a group holding an Azure role
// assignment (sg-aks-platform-ops, Contributor on the resource group) is
// read with its application's credentials and federated credentials, for
// ENTRA-013, through the Graph SDK against the fake.
func TestGroupAssignmentMembersCredentials(t *testing.T) {
	snap := loadExample(t)
	const ops, id = "e97a7122-b22b-4cca-9229-80bd3b8f5453", "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	end := timestamppb.New(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	snap.ServicePrincipals = append(snap.ServicePrincipals, &secureauditv1.DirectoryServicePrincipal{
		Id: id, AppId: "8d2e3f4a-5b6c-4d7e-9f8a-0b1c2d3e4f5a", DisplayName: "app-ops-pipeline", ServicePrincipalType: "Application",
		FederatedCredentials: []*secureauditv1.FederatedCredential{{Name: "gh", Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:fabrikam/ops:environment:prod"}},
		PasswordCredentials:  1,
		Credentials: []*secureauditv1.ApplicationCredential{{
			Kind: secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET, KeyId: "9e3f4a5b-6c7d-4e8f-8a9b-1c2d3e4f5a6b", DisplayName: "fallback",
			Start: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), End: end,
		}},
	})
	for _, g := range snap.GetGroups() {
		if g.GetId() == ops {
			g.MemberIds = append(g.MemberIds, id)
		}
	}
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	got, err := source(t, fake, tenant.Config{ClusterID: exampleCluster}).Resolve(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got.ServicePrincipals, func(sp *secureauditv1.DirectoryServicePrincipal) bool { return sp.GetId() == id })
	if i < 0 {
		t.Fatalf("the group's service principal member %s was not resolved", id)
	}
	sp := got.ServicePrincipals[i]
	if len(sp.GetCredentials()) != 1 || sp.GetCredentials()[0].GetKeyId() != "9e3f4a5b-6c7d-4e8f-8a9b-1c2d3e4f5a6b" || len(sp.GetFederatedCredentials()) != 1 {
		t.Errorf("credentials %v, federated %v: want the secret's metadata and the federated credential", sp.GetCredentials(), sp.GetFederatedCredentials())
	}
}

// TestCheckCredentialPerCluster: the credential self-check covers every
// AKS cluster the agent is asked to resolve, not only the configured one.
// The agent's identity holds Reader at cluster A (configured) and, at
// cluster B, a role allowing listClusterAdminCredential/action: before any
// request names B the check passes; the request naming B checks B before
// it is answered, and the violation is presented naming B (and not A);
// the re-check (Run's, every interval) covers B again and sees the role
// removed; a malformed or foreign resource ID is refused naming it, and
// nothing is read or checked for it.
func TestCheckCredentialPerCluster(t *testing.T) {
	declared := tenant.Declared{
		Graph: tenant.ReadOnlyPermissions,
		ARM:   []string{"Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleDefinitions/read", "Microsoft.ContainerService/managedClusters/read"},
	}
	const (
		rgB      = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-b"
		clusterB = rgB + "/providers/Microsoft.ContainerService/managedClusters/aks-fabrikam-b"
		admin    = "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"
	)
	snap := loadExample(t)
	fake := tenanttest.New(t, snap, declared.Graph...)
	snap.RoleAssignments = append(snap.RoleAssignments,
		&secureauditv1.AzureRoleAssignment{
			Id: exampleCluster + "/providers/Microsoft.Authorization/roleAssignments/agent-reader", PrincipalId: fake.AgentID,
			PrincipalType: "ServicePrincipal", RoleName: "Reader", Scope: exampleCluster,
		},
		&secureauditv1.AzureRoleAssignment{
			Id: clusterB + "/providers/Microsoft.Authorization/roleAssignments/agent-admin-credential", PrincipalId: fake.AgentID,
			PrincipalType: "ServicePrincipal", RoleName: "AKS admin kubeconfig (custom)", Scope: clusterB, CustomRole: true,
			Permissions: []*secureauditv1.AzureRolePermission{{Actions: []string{"Microsoft.ContainerService/managedClusters/read", admin}}},
		})
	violation := `Azure role "AKS admin kubeconfig (custom)" at ` + clusterB + " allows " + admin
	ctx := context.Background()
	src := source(t, fake, tenant.Config{ClusterID: exampleCluster})
	m := tenant.NewMonitor(src, declared, slog.New(slog.NewTextHandler(io.Discard, nil)))
	presented := func() map[string]any {
		t.Helper()
		var p map[string]any
		if err := json.Unmarshal([]byte(m.Presented()), &p); err != nil {
			t.Fatalf("presented %q: %v", m.Presented(), err)
		}
		return p
	}
	if m.Presented() != "" {
		t.Errorf("presented %q before any check, want nothing", m.Presented())
	}
	if got := m.Check(ctx); got.Outcome != "pass" || !strings.Contains(got.Summary, exampleCluster) || strings.Contains(got.Summary, clusterB) {
		t.Errorf("at start: %q %q, want a pass naming cluster A only", got.Outcome, got.Summary)
	}
	// Requests naming A, or none, leave the result clean.
	for _, c := range []string{"", exampleCluster} {
		if _, err := m.ResolveCluster(ctx, c, examplePrincipals[:1]); err != nil {
			t.Fatal(err)
		}
		if p := presented(); p["outcome"] != "pass" {
			t.Errorf("after a request naming %q: %v, want pass", c, p)
		}
	}
	if n := fake.Requests(clusterB); n != 0 {
		t.Errorf("%d requests under cluster B before any request named it", n)
	}
	// The request naming B: answered after B was checked.
	res, err := m.ResolveCluster(ctx, clusterB, examplePrincipals[:1])
	if err != nil {
		t.Fatal(err)
	}
	if res.ClusterResourceID != clusterB {
		t.Errorf("the answer presents cluster %q, want B", res.ClusterResourceID)
	}
	p := presented()
	summary, _ := p["summary"].(string)
	if p["outcome"] != "violation" || !strings.Contains(summary, "at AKS cluster(s) "+clusterB+":") {
		t.Errorf("after a request naming B: %v, want a violation naming B", p)
	}
	if strings.Contains(summary, "at AKS cluster(s) "+exampleCluster) || strings.Contains(summary, exampleCluster+",") {
		t.Errorf("the violation names cluster A, which holds Reader only: %s", summary)
	}
	if diff := cmp.Diff([]any{violation}, p["findings"]); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	// B is checked once when first named, not at every request.
	listB := clusterB + "/providers/Microsoft.Authorization/roleAssignments"
	before := fake.Requests(listB)
	if _, err := m.ResolveCluster(ctx, strings.ToUpper(clusterB[:1])+clusterB[1:], examplePrincipals[:1]); err != nil {
		t.Fatal(err)
	}
	if n := fake.Requests(listB) - before; n != 1 { // the answer's own listing
		t.Errorf("a second request naming B listed B's role assignments %d times, want once (the answer's; no second check)", n)
	}
	// The periodic re-check covers B and reads the role definitions again:
	// the custom role edited down to reading the cluster, the result is
	// clean again and names both clusters checked.
	snap.RoleAssignments[len(snap.RoleAssignments)-1].Permissions = []*secureauditv1.AzureRolePermission{{Actions: []string{"Microsoft.ContainerService/managedClusters/read"}}}
	if got := m.Check(ctx); got.Outcome != "pass" || !strings.Contains(got.Summary, exampleCluster) || !strings.Contains(got.Summary, clusterB) {
		t.Errorf("re-check with the role at B edited down to reads: %q %q, want a pass naming A and B", got.Outcome, got.Summary)
	}

	// Refused resource IDs, each named in the error; nothing read for them.
	other := tenant.Config{ClusterID: exampleCluster, Subscriptions: []string{"0b6a1f0e-3c2d-4e5f-8a9b-1c2d3e4f5a6b"}}
	for _, tt := range []struct {
		name, id, reason string
		cfg              tenant.Config
	}{
		{"subscription not a GUID", "/subscriptions/prod/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks", `subscription "prod" is not a subscription ID`, tenant.Config{}},
		{"a resource group", rgB, "not the resource ID of an AKS managed cluster", tenant.Config{}},
		{"another resource type", rgB + "/providers/Microsoft.Compute/virtualMachines/vm", "not the resource ID of an AKS managed cluster", tenant.Config{}},
		{"a path below the cluster", clusterB + "/namespaces/default", "not the resource ID of an AKS managed cluster", tenant.Config{}},
		{"cluster name", rgB + "/providers/Microsoft.ContainerService/managedClusters/-aks-", `cluster name "-aks-"`, tenant.Config{}},
		{"resource group name", "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg./providers/Microsoft.ContainerService/managedClusters/aks", `resource group "rg."`, tenant.Config{}},
		{"a subscription the agent may not read", clusterB, "subscription 5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45 is not one this entra-agent may read", other},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mon := m
			if tt.cfg.Subscriptions != nil {
				// The configured cluster is held to -subscriptions too.
				cred, _ := azidentity.NewClientSecretCredential(fake.TenantID, "c", "s", nil)
				if _, err := tenant.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cred, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("New with a cluster outside -subscriptions: %v, want an error saying %q", err, tt.reason)
				}
				tt.cfg.ClusterID = ""
				mon = tenant.NewMonitor(source(t, fake, tt.cfg), declared, slog.New(slog.NewTextHandler(io.Discard, nil)))
			}
			before := m.Presented()
			requests := fake.Requests("/subscriptions/")
			_, err := mon.ResolveCluster(ctx, tt.id, examplePrincipals[:1])
			var ce *directory.ClusterError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), strconv.Quote(tt.id)) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("ResolveCluster(%q) = %v, want a ClusterError naming the ID and saying %q", tt.id, err, tt.reason)
			}
			if n := fake.Requests("/subscriptions/") - requests; n != 0 {
				t.Errorf("%d ARM requests for a refused cluster", n)
			}
			if m.Presented() != before {
				t.Errorf("a refused cluster changed the presented check: %s", m.Presented())
			}
		})
	}
}

// TestCheckCredentialUnconfigured: an agent started without
// -cluster-resource-id checks no Azure role assignment until a request
// names a cluster; a cluster whose role assignments cannot be read makes
// the check an error naming it, and the answer for it is partial, naming
// every ARM read that failed, never silently without Azure grants.
func TestCheckCredentialUnconfigured(t *testing.T) {
	declared := tenant.Declared{Graph: tenant.ReadOnlyPermissions, ARM: []string{"Microsoft.ContainerService/managedClusters/read"}}
	const clusterC = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-c/providers/Microsoft.ContainerService/managedClusters/aks-c"
	snap := loadExample(t)
	fake := tenanttest.New(t, snap, declared.Graph...)
	ctx := context.Background()
	m := tenant.NewMonitor(source(t, fake, tenant.Config{MaxRetries: 1}), declared, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := m.Check(ctx); got.Outcome != "pass" || !strings.Contains(got.Summary, "Azure role assignments not checked") {
		t.Errorf("no cluster: %q %q, want a pass saying Azure was not checked", got.Outcome, got.Summary)
	}
	fake.Fail(clusterC, http.StatusForbidden)
	res, err := m.ResolveCluster(ctx, clusterC, examplePrincipals[:1])
	if err != nil {
		t.Fatal(err)
	}
	var lookups []string
	for _, e := range res.Errors {
		lookups = append(lookups, e.GetLookup())
	}
	slices.Sort(lookups)
	want := []string{
		"deny assignments at " + clusterC,
		"managed cluster " + clusterC,
		"role assignment schedule instances at " + clusterC,
		"role assignments at " + clusterC,
		"role eligibility schedule instances at " + clusterC,
	}
	if diff := cmp.Diff(want, lookups); diff != "" {
		t.Errorf("lookup errors of a cluster ARM refuses (-want +got):\n%s", diff)
	}
	if c := directory.Chunks(res)[0]; !c.GetPartial() || c.GetClusterResourceId() != clusterC {
		t.Errorf("the answer for a cluster ARM refuses: partial %v, presents %q; want partial, cluster C", c.GetPartial(), c.GetClusterResourceId())
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(m.Presented()), &p); err != nil {
		t.Fatal(err)
	}
	if s, _ := p["summary"].(string); p["outcome"] != "error" || !strings.Contains(s, "AKS cluster "+clusterC) || !strings.Contains(s, "403") {
		t.Errorf("check of a cluster ARM refuses: %v, want an error naming the cluster and the status", p)
	}
}

// TestCheckCredentialConcurrentFirst: requests naming a new cluster at
// once check it once, and every one of them returns only after the check,
// so each caller then sees the cluster's result presented.
func TestCheckCredentialConcurrentFirst(t *testing.T) {
	const clusterB = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-b/providers/Microsoft.ContainerService/managedClusters/aks-b"
	snap := loadExample(t)
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	snap.RoleAssignments = append(snap.RoleAssignments, &secureauditv1.AzureRoleAssignment{
		Id: clusterB + "/providers/Microsoft.Authorization/roleAssignments/agent-admin", PrincipalId: fake.AgentID,
		PrincipalType: "ServicePrincipal", RoleName: "Azure Kubernetes Service Cluster Admin Role", Scope: clusterB,
	})
	declared := tenant.Declared{Graph: tenant.ReadOnlyPermissions, ARM: []string{"Microsoft.ContainerService/managedClusters/read"}}
	m := tenant.NewMonitor(source(t, fake, tenant.Config{}), declared, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	m.Check(ctx)
	const n = 4
	errs := make(chan error, n)
	seen := make(chan string, n)
	for range n {
		go func() {
			_, err := m.ResolveCluster(ctx, clusterB, examplePrincipals[:1])
			seen <- m.Presented()
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if p := <-seen; !strings.Contains(p, `"outcome":"violation"`) || !strings.Contains(p, clusterB) {
			t.Errorf("a request naming B returned while the check presented %s, want B's violation", p)
		}
	}
	// n answers list B's role assignments once each, and one check.
	if got := fake.Requests(clusterB + "/providers/Microsoft.Authorization/roleAssignments"); got != n+1 {
		t.Errorf("B's role assignments listed %d times, want %d (the answers' and one check)", got, n+1)
	}
}

// TestCheckCredentialRun: Run's periodic check covers every cluster read
// so far, not only the configured one: a role granting
// listClusterAdminCredential/action at cluster B after B was first
// resolved is presented, naming B, after the next tick. (The ticks are a
// channel: an unbuffered send returns once Run waits again, so the check
// of the tick before has finished.)
func TestCheckCredentialRun(t *testing.T) {
	const clusterB = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-b/providers/Microsoft.ContainerService/managedClusters/aks-b"
	snap := loadExample(t)
	fake := tenanttest.New(t, snap, tenant.ReadOnlyPermissions...)
	declared := tenant.Declared{Graph: tenant.ReadOnlyPermissions, ARM: []string{"Microsoft.ContainerService/managedClusters/read"}}
	m := tenant.NewMonitor(source(t, fake, tenant.Config{ClusterID: exampleCluster}), declared, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	m.Check(ctx)
	if _, err := m.ResolveCluster(ctx, clusterB, examplePrincipals[:1]); err != nil {
		t.Fatal(err)
	}
	if p := m.Presented(); !strings.Contains(p, `"outcome":"pass"`) || !strings.Contains(p, clusterB) {
		t.Fatalf("after B was resolved without a role there: %s, want a pass naming B", p)
	}
	ticks := make(chan time.Time)
	done := make(chan error, 1)
	go func() { done <- m.RunTicks(ctx, ticks) }()
	snap.RoleAssignments = append(snap.RoleAssignments, &secureauditv1.AzureRoleAssignment{
		Id: clusterB + "/providers/Microsoft.Authorization/roleAssignments/agent-admin", PrincipalId: fake.AgentID,
		PrincipalType: "ServicePrincipal", RoleName: "Azure Kubernetes Service Cluster Admin Role", Scope: clusterB,
	})
	ticks <- time.Now()
	ticks <- time.Now() // taken once the first tick's check finished
	if p := m.Presented(); !strings.Contains(p, `"outcome":"violation"`) || !strings.Contains(p, "at AKS cluster(s) "+clusterB+":") {
		t.Errorf("after a tick with the role at B: %s, want a violation naming B", p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestCheckCredentialBounded: a Monitor keeps at most its bound of
// clusters (the configured one included): a request naming a new cluster
// beyond it is refused with a ClusterError that names the ID and the bound
// and says the source is full, before anything is read for that cluster,
// and the presented check is unchanged (no cluster checked before is
// evicted from it); the clusters kept, named in any case, are still
// answered; the default bound is MaxCheckedClusters.
func TestCheckCredentialBounded(t *testing.T) {
	if tenant.MaxCheckedClusters != 1024 {
		t.Errorf("MaxCheckedClusters = %d, want 1024 (the README's figure)", tenant.MaxCheckedClusters)
	}
	declared := tenant.Declared{
		Graph: tenant.ReadOnlyPermissions,
		ARM:   []string{"Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleDefinitions/read", "Microsoft.ContainerService/managedClusters/read"},
	}
	const rg = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-b/providers/Microsoft.ContainerService/managedClusters/"
	clusterB, clusterC, clusterD := rg+"aks-fabrikam-b", rg+"aks-fabrikam-c", rg+"aks-fabrikam-d"
	fake := tenanttest.New(t, loadExample(t), declared.Graph...)
	ctx := context.Background()
	m := tenant.NewMonitor(source(t, fake, tenant.Config{ClusterID: exampleCluster}), declared, slog.New(slog.NewTextHandler(io.Discard, nil)), tenant.WithMaxClusters(3))
	m.Check(ctx)
	for _, c := range []string{clusterB, clusterC} {
		if _, err := m.ResolveCluster(ctx, c, examplePrincipals[:1]); err != nil {
			t.Fatalf("cluster %s, within the bound: %v", c, err)
		}
	}
	before := m.Presented()
	for _, c := range []string{clusterB, clusterC} {
		if !strings.Contains(before, c) {
			t.Fatalf("the check does not present cluster %s: %s", c, before)
		}
	}
	requests := fake.Requests("/subscriptions/")
	_, err := m.ResolveCluster(ctx, clusterD, examplePrincipals[:1])
	var ce *directory.ClusterError
	if !errors.As(err, &ce) || !ce.Full || ce.ID != clusterD || !strings.Contains(err.Error(), strconv.Quote(clusterD)) || !strings.Contains(err.Error(), "3 AKS clusters") || !strings.Contains(err.Error(), "MaxCheckedClusters") {
		t.Fatalf("a fourth cluster with a bound of 3: %v, want a full ClusterError naming the ID and the bound", err)
	}
	if n := fake.Requests("/subscriptions/") - requests; n != 0 {
		t.Errorf("%d ARM requests for the refused cluster", n)
	}
	// A malformed ID is refused as malformed, full or not.
	if _, err := m.ResolveCluster(ctx, "/subscriptions/not-a-cluster", examplePrincipals[:1]); !errors.As(err, &ce) || ce.Full || !strings.Contains(err.Error(), "not the resource ID of an AKS managed cluster") {
		t.Errorf("a malformed cluster ID with the bound reached: %v, want a ClusterError saying it is not an AKS resource ID (not Full)", err)
	}
	if got := m.Presented(); got != before {
		t.Errorf("the refusal changed the presented check:\n%s\nwas\n%s", got, before)
	}
	// Those kept are answered, however named: the configured one (by its
	// ID in upper case, and by none), B and C.
	for _, c := range []string{strings.ToUpper(exampleCluster), "", clusterB, clusterC} {
		if _, err := m.ResolveCluster(ctx, c, examplePrincipals[:1]); err != nil {
			t.Errorf("cluster %q, kept: %v", c, err)
		}
	}
	// The periodic re-check still presents every cluster kept, D not.
	got := m.Check(ctx)
	for _, c := range []string{exampleCluster, clusterB, clusterC} {
		if !strings.Contains(got.Summary, c) {
			t.Errorf("the re-check does not present %s: %s", c, got.Summary)
		}
	}
	if strings.Contains(got.Summary, clusterD) {
		t.Errorf("the re-check presents the refused cluster: %s", got.Summary)
	}
}
