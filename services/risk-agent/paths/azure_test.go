package paths_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const (
	azSub     = "/subscriptions/00000000-0000-4000-8000-000000000001"
	azRG      = azSub + "/resourceGroups/rg-aks"
	azCluster = azRG + "/providers/Microsoft.ContainerService/managedClusters/aks"
	azOps     = "0000000b-0000-4000-8000-00000000000b"
	azAnna    = "00000001-0000-4000-8000-000000000001"
	azBen     = "00000002-0000-4000-8000-000000000002"
)

// azureRoutes returns the routes a role opens, as the entra-agent reads
// them from the role's permissions (notActions subtracted).
var (
	contributor = []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND, secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE}
	uaa         = []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE}
	// A custom role: '*' without listClusterAdminCredential, runCommand,
	// managedClusters/write and Microsoft.Authorization/*: only the user
	// credential, which with Entra integration still needs RBAC.
	starButCredentials = []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL}
	data               = []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS}
)

// azureSnapshot is a cluster where ServiceAccount payments/deployer is
// cluster-admin and runs in a pod.
func azureSnapshot() *snapshot.Snapshot {
	return snapshot.Build([]*secureauditv1.SnapshotChunk{{
		Namespaces:      []*secureauditv1.Namespace{{Meta: &secureauditv1.ObjectMeta{Name: "payments"}}},
		ServiceAccounts: []*secureauditv1.ServiceAccount{{Meta: &secureauditv1.ObjectMeta{Name: "deployer", Namespace: "payments"}}},
		ClusterRoles: []*secureauditv1.ClusterRole{{Meta: &secureauditv1.ObjectMeta{Name: "cluster-admin"}, Rules: []*secureauditv1.PolicyRule{
			{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}}, {Verbs: []string{"*"}, NonResourceUrls: []string{"*"}},
		}}},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Name: "deployer-admin"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "deployer", Namespace: "payments"}},
		}},
	}}, nil)
}

func azureDir(c *secureauditv1.AksCluster, as ...*secureauditv1.AzureRoleAssignment) []*secureauditv1.DirectoryChunk {
	return []*secureauditv1.DirectoryChunk{{
		Users:           []*secureauditv1.DirectoryUser{{Id: azAnna, UserPrincipalName: "anna@t.example"}, {Id: azBen, UserPrincipalName: "ben@t.example"}},
		Groups:          []*secureauditv1.DirectoryGroup{{Id: azOps, DisplayName: "ops"}},
		AksCluster:      c,
		RoleAssignments: as,
	}}
}

func assignment(n, principal, typ, role, scope string, routes []secureauditv1.AzureRoute) *secureauditv1.AzureRoleAssignment {
	return &secureauditv1.AzureRoleAssignment{Id: scope + "/providers/Microsoft.Authorization/roleAssignments/" + n, PrincipalId: principal, PrincipalType: typ, RoleName: role, Scope: scope, Routes: routes}
}

// TestAzurePaths: escalation paths that start from an Azure role, each step
// stating what the cluster's ARM configuration makes true, an eligible
// assignment's path conditional on its activation, and no path where the
// role's notActions (or the cluster) close the route.
func TestAzurePaths(t *testing.T) {
	local := &secureauditv1.AksCluster{Id: azCluster, LocalAccountsEnabled: true, ManagedEntra: true, AzureRbac: true, KubernetesRbac: true}
	noLocal := &secureauditv1.AksCluster{Id: azCluster, ManagedEntra: true, AzureRbac: true, KubernetesRbac: true}
	writer := assignment("w", azBen, "User", "Azure Kubernetes Service RBAC Writer", azCluster+"/namespaces/payments", data)
	writer.Permissions = []*secureauditv1.AzureRolePermission{{DataActions: []string{"Microsoft.ContainerService/managedClusters/pods/*"}}}
	eligible := assignment("e", azAnna, "User", "Contributor", azRG, contributor)
	eligible.Id = azRG + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e"
	eligible.Eligible = true
	tests := []struct {
		name string
		dir  []*secureauditv1.DirectoryChunk
		want []string // severity, subject, then each step
	}{
		{
			name: "Contributor on the resource group, local accounts enabled",
			dir:  azureDir(local, assignment("c", azOps, "Group", "Contributor", azRG, contributor)),
			want: []string{"CRITICAL Group " + azOps,
				"1. Group " + azOps + " --[can call listClusterAdminCredential (Contributor on resource group rg-aks) (via Azure role assignment " + azRG + "/providers/Microsoft.Authorization/roleAssignments/c, Azure role Contributor)]--> the cluster's admin credential (listClusterAdminCredential)",
				"2. the cluster's admin credential (listClusterAdminCredential) --[is a client certificate in system:masters, usable while local accounts are enabled (the cluster's ARM configuration: disableLocalAccounts false)]--> cluster-admin",
			},
		},
		{
			name: "Contributor without local accounts: it can enable them",
			dir:  azureDir(noLocal, assignment("c", azOps, "Group", "Contributor", azRG, contributor)),
			want: []string{"CRITICAL Group " + azOps,
				"1. Group " + azOps + " --[can enable local accounts (managedClusters/write) and then call listClusterAdminCredential: a client certificate in system:masters (Contributor on resource group rg-aks) (via Azure role assignment " + azRG + "/providers/Microsoft.Authorization/roleAssignments/c, Azure role Contributor)]--> cluster-admin",
			},
		},
		{
			name: "User Access Administrator assigns itself a cluster role",
			dir:  azureDir(local, assignment("u", azAnna, "User", "User Access Administrator", azSub, uaa)),
			want: []string{"CRITICAL User anna@t.example",
				"1. User anna@t.example --[can write role assignments (Microsoft.Authorization/roleAssignments/write) (User Access Administrator on subscription 00000000-0000-4000-8000-000000000001) (via Azure role assignment " + azSub + "/providers/Microsoft.Authorization/roleAssignments/u, Azure role User Access Administrator)]--> an Azure role of its choosing, assigned to itself at the cluster",
				"2. an Azure role of its choosing, assigned to itself at the cluster --[includes Azure Kubernetes Service RBAC Cluster Admin: every Kubernetes data action through Azure RBAC for Kubernetes (enabled on the cluster)]--> cluster-admin",
			},
		},
		{
			name: "eligible Contributor: conditional on its activation",
			dir:  azureDir(local, eligible),
			want: []string{"HIGH User anna@t.example",
				"1. User anna@t.example --[can call listClusterAdminCredential (Contributor on resource group rg-aks, eligible) (via Azure role assignment " + eligible.GetId() + ", Azure role Contributor) (conditional: assumes the holder activates its eligible assignment through Privileged Identity Management (approval, MFA and justification as the role's PIM settings require))]--> the cluster's admin credential (listClusterAdminCredential)",
				"2. the cluster's admin credential (listClusterAdminCredential) --[is a client certificate in system:masters, usable while local accounts are enabled (the cluster's ARM configuration: disableLocalAccounts false)]--> cluster-admin",
			},
		},
		{
			name: "RBAC Writer in a namespace: create pods as its cluster-admin ServiceAccount",
			dir:  azureDir(local, writer),
			want: []string{"CRITICAL User ben@t.example",
				"1. User ben@t.example --[can create pods in namespace payments that run as any ServiceAccount there (via Azure role assignment " + writer.GetId() + ", Azure role Azure Kubernetes Service RBAC Writer)]--> any ServiceAccount of namespace payments",
				"2. any ServiceAccount of namespace payments --[includes]--> ServiceAccount payments/deployer",
				"3. ServiceAccount payments/deployer --[holds every verb on every resource cluster-wide (via ClusterRoleBinding deployer-admin, ClusterRole cluster-admin)]--> cluster-admin",
			},
		},
		{
			name: "AKS Contributor Role rewrites the admin groups: conditional",
			dir:  azureDir(noLocal, assignment("k", azAnna, "User", "Azure Kubernetes Service Contributor Role", azCluster, []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE})),
			want: []string{"HIGH User anna@t.example",
				"1. User anna@t.example --[can name an Entra group of its choosing as one (managedClusters/write) (Azure Kubernetes Service Contributor Role on the cluster) (via Azure role assignment " + azCluster + "/providers/Microsoft.Authorization/roleAssignments/k, Azure role Azure Kubernetes Service Contributor Role) (conditional: assumes the holder is a member of an Entra group it can name as the cluster's admin group)]--> the cluster's admin groups (aadProfile.adminGroupObjectIDs)",
				"2. the cluster's admin groups (aadProfile.adminGroupObjectIDs) --[make their members cluster-admin without any binding]--> cluster-admin",
			},
		},
		{
			name: "Contributor on the resource group, its credential and write routes denied to Everyone: no path",
			dir: access.WithoutDenied(func() []*secureauditv1.DirectoryChunk {
				dir := azureDir(local, assignment("c", azOps, "Group", "Contributor", azRG, contributor))
				dir[0].DenyAssignments = []*secureauditv1.AzureDenyAssignment{{
					Id: azRG + "/providers/Microsoft.Authorization/denyAssignments/d", Scope: azRG, PrincipalIds: []string{access.Everyone},
					Permissions: []*secureauditv1.AzureRolePermission{{Actions: []string{"Microsoft.ContainerService/managedClusters/*"}, NotActions: []string{"Microsoft.ContainerService/managedClusters/read"}}},
				}}
				return dir
			}()),
		},
		{
			name: "Contributor on the resource group, a deny assignment excluding its group: the path stays",
			dir: access.WithoutDenied(func() []*secureauditv1.DirectoryChunk {
				dir := azureDir(noLocal, assignment("c", azOps, "Group", "Contributor", azRG, contributor))
				dir[0].DenyAssignments = []*secureauditv1.AzureDenyAssignment{{
					Id: azRG + "/providers/Microsoft.Authorization/denyAssignments/d", Scope: azRG, PrincipalIds: []string{access.Everyone}, ExcludePrincipalIds: []string{azOps},
					Permissions: []*secureauditv1.AzureRolePermission{{Actions: []string{"Microsoft.ContainerService/managedClusters/*"}}},
				}}
				return dir
			}()),
			want: []string{"CRITICAL Group " + azOps,
				"1. Group " + azOps + " --[can enable local accounts (managedClusters/write) and then call listClusterAdminCredential: a client certificate in system:masters (Contributor on resource group rg-aks) (via Azure role assignment " + azRG + "/providers/Microsoft.Authorization/roleAssignments/c, Azure role Contributor)]--> cluster-admin",
			},
		},
		{
			name: "'*' without the credential actions in notActions: no route",
			dir:  azureDir(local, assignment("s", azAnna, "User", "Everything but credentials", azRG, starButCredentials)),
		},
		{
			name: "Contributor, local accounts disabled and no Entra integration to rewrite: nothing",
			dir:  azureDir(&secureauditv1.AksCluster{Id: azCluster, KubernetesRbac: true}, assignment("c", azOps, "Group", "Reader-like", azRG, nil)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := rules.Analyze(azureSnapshot())
			var got []string
			for _, f := range paths.AnalyzeWithAzure(a, tt.dir).Findings {
				if f.GetBinding().GetKind() != secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
					continue
				}
				got = append(got, strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_")+" "+rules.SubjectText(&secureauditv1.Subject{Kind: f.GetSubject().GetKind(), Name: f.GetSubject().GetName()}))
				got = append(got, steps(t, f)...)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("paths from Azure (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAzurePathShareTheGrant: a path that starts with a credential grant
// is keyed as the grant's AKS-008 finding (one report entry), its
// remediation deletes the assignment, and Analyze without the directory
// finds no path from Azure.
func TestAzurePathShareTheGrant(t *testing.T) {
	local := &secureauditv1.AksCluster{Id: azCluster, LocalAccountsEnabled: true, ManagedEntra: true, KubernetesRbac: true}
	dir := azureDir(local, assignment("c", azOps, "Group", "Contributor", azRG, contributor))
	a := rules.Analyze(azureSnapshot())
	res := paths.AnalyzeWithAzure(a, dir)
	var key string
	for _, g := range access.AzureGrants(dir) {
		if g.Credential {
			key = g.Key()
		}
	}
	found := false
	for _, f := range res.Findings {
		if f.GetBinding().GetKind() != secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
			continue
		}
		found = true
		if f.GetGrantKey() != key {
			t.Errorf("grant key %q, want the AKS-008 key %q", f.GetGrantKey(), key)
		}
		if !strings.HasSuffix(f.GetRemediation(), "\naz role assignment delete --ids "+azRG+"/providers/Microsoft.Authorization/roleAssignments/c") {
			t.Errorf("remediation %q does not delete the assignment", f.GetRemediation())
		}
	}
	if !found {
		t.Fatal("no path from the Contributor assignment")
	}
	for _, c := range res.ChokePoints {
		if c.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
			t.Errorf("an Azure assignment is a choke point: %v", c.GetBinding())
		}
	}
	for _, f := range paths.Analyze(a).Findings {
		if f.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
			t.Errorf("Analyze without a directory found a path from Azure: %s", f.GetDescription())
		}
	}
}

// TestEligiblePathCommand: a path that starts with an eligible assignment
// is broken by removing the eligibility, with the command filled in from
// the assignment (its scope, principal and role), as ENTRA-008 gives it:
// one builder (access.RemoveCommand), no placeholders where the audit
// knows the values.
func TestEligiblePathCommand(t *testing.T) {
	local := &secureauditv1.AksCluster{Id: azCluster, LocalAccountsEnabled: true, ManagedEntra: true, AzureRbac: true, KubernetesRbac: true}
	eligible := assignment("e", azAnna, "User", "Contributor", azRG, []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL})
	eligible.Id = azRG + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e"
	eligible.Eligible = true
	eligible.RoleDefinitionId = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"
	var fix string
	for _, f := range paths.AnalyzeWithAzure(rules.Analyze(azureSnapshot()), azureDir(local, eligible)).Findings {
		if f.GetBinding().GetName() == eligible.GetId() {
			fix = f.GetRemediation()
		}
	}
	if fix == "" {
		t.Fatal("no path from the eligible assignment")
	}
	if want := access.RemoveCommand(eligible); !strings.HasSuffix(fix, "\n"+want) ||
		!strings.Contains(want, "https://management.azure.com"+azRG+"/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/") ||
		!strings.Contains(want, `"principalId":"`+azAnna+`"`) || !strings.Contains(want, eligible.RoleDefinitionId) {
		t.Errorf("eligible path's remediation %q, want it to end in %q", fix, want)
	}
}
