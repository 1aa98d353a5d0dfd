package access_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/discovery"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const (
	azCluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
	azAdmins  = "0000000a-0000-4000-8000-00000000000a"
	azOps     = "0000000b-0000-4000-8000-00000000000b"
	azNina    = "00000001-0000-4000-8000-000000000001"
	azTom     = "00000002-0000-4000-8000-000000000002"
	azSP      = "00000003-0000-4000-8000-000000000003"
)

// azureDirectory is a directory answer with an AKS cluster (local
// accounts and Azure RBAC as given), an admin group, Contributor on the
// resource group for a group, RBAC Writer on namespace payments for a
// user, a custom role with runCommand for a user, and RBAC Reader at the
// cluster for a service principal.
func azureDirectory(local, azureRBAC bool) []*secureauditv1.DirectoryChunk {
	writer := []*secureauditv1.AzureRolePermission{{
		DataActions: []string{
			"Microsoft.ContainerService/managedClusters/pods/*",
			"Microsoft.ContainerService/managedClusters/secrets/read",
			"Microsoft.ContainerService/managedClusters/apps/deployments/write",
			"Microsoft.ContainerService/managedClusters/serviceaccounts/impersonate/action",
		},
	}}
	return []*secureauditv1.DirectoryChunk{{
		Users:  []*secureauditv1.DirectoryUser{{Id: azNina, UserPrincipalName: "nina@t.example"}, {Id: azTom, UserPrincipalName: "tom@t.example"}},
		Groups: []*secureauditv1.DirectoryGroup{{Id: azAdmins}, {Id: azOps}},
		AksCluster: &secureauditv1.AksCluster{
			Id: azCluster, LocalAccountsEnabled: local, ManagedEntra: true, AzureRbac: azureRBAC, KubernetesRbac: true,
			AdminGroupObjectIds: []string{azAdmins},
		},
		RoleAssignments: []*secureauditv1.AzureRoleAssignment{
			{Id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/1", PrincipalId: azOps, PrincipalType: "Group", RoleName: "Contributor", Scope: "/subscriptions/s/resourceGroups/rg",
				Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND, secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE}},
			{Id: azCluster + "/namespaces/payments/providers/Microsoft.Authorization/roleAssignments/2", PrincipalId: azNina, PrincipalType: "User", RoleName: "Azure Kubernetes Service RBAC Writer", Scope: azCluster + "/namespaces/payments",
				Permissions: writer, Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS}},
			{Id: azCluster + "/providers/Microsoft.Authorization/roleAssignments/3", PrincipalId: azTom, PrincipalType: "User", RoleName: "Support Operator", Scope: azCluster, CustomRole: true,
				Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND}},
			{Id: azCluster + "/providers/Microsoft.Authorization/roleAssignments/4", PrincipalId: azSP, PrincipalType: "ServicePrincipal", RoleName: "Azure Kubernetes Service RBAC Reader", Scope: azCluster,
				Permissions: []*secureauditv1.AzureRolePermission{{DataActions: []string{"Microsoft.ContainerService/managedClusters/*/read"}, NotDataActions: []string{"Microsoft.ContainerService/managedClusters/secrets/read"}}},
				Routes:      []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS}},
		},
	}}
}

func TestAzureGrants(t *testing.T) {
	var got []string
	for _, g := range access.AzureGrants(azureDirectory(true, true)) {
		got = append(got, fmt.Sprintf("%s | %s %s | %s", g.Binding, g.Subject.GetKind(), g.Subject.GetName(), g.Route))
	}
	want := []string{
		"AKS admin group " + azAdmins + " -> cluster-admin | SUBJECT_KIND_GROUP " + azAdmins + " | member of the cluster's admin group (aadProfile.adminGroupObjectIDs) -> cluster-admin",
		"Azure role assignment /subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/1 -> Azure role Contributor | SUBJECT_KIND_GROUP " + azOps +
			" | listClusterAdminCredential -> client certificate in system:masters (local accounts enabled); runCommand -> kubectl as cluster-admin through ARM (local accounts enabled, run command not disabled)",
		"Azure role assignment " + azCluster + "/providers/Microsoft.Authorization/roleAssignments/3 -> Azure role Support Operator | SUBJECT_KIND_USER tom@t.example | runCommand -> kubectl as cluster-admin through ARM (local accounts enabled, run command not disabled)",
		"Azure role assignment " + azCluster + "/providers/Microsoft.Authorization/roleAssignments/4 -> Azure role Azure Kubernetes Service RBAC Reader | SUBJECT_KIND_USER " + azSP +
			" | Kubernetes data actions through Azure RBAC for Kubernetes (Microsoft.ContainerService/managedClusters/*/read without Microsoft.ContainerService/managedClusters/secrets/read: expanded over the built-in resources of Kubernetes " + discovery.BuiltinVersion() + ", custom resources left out)",
		"Azure role assignment " + azCluster + "/namespaces/payments/providers/Microsoft.Authorization/roleAssignments/2 (namespace payments) -> Azure role Azure Kubernetes Service RBAC Writer | SUBJECT_KIND_USER nina@t.example | Kubernetes data actions through Azure RBAC for Kubernetes",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AzureGrants (-want +got):\n%s", diff)
	}
	if g := access.AzureGrants([]*secureauditv1.DirectoryChunk{{RoleAssignments: azureDirectory(true, true)[0].GetRoleAssignments()}}); g != nil {
		t.Errorf("grants without a cluster: %v", g)
	}
}

// TestEngineWithAzure asks the engine built with the Azure grants: who-can
// lists them beside the bindings, a namespace-scoped assignment counts
// only in its namespace, credentials need local accounts and data actions
// need Azure RBAC for Kubernetes.
func TestEngineWithAzure(t *testing.T) {
	snap := snapshot.Build([]*secureauditv1.SnapshotChunk{{}}, nil)
	res := func(verb, resource, sub, ns string) access.Attributes {
		return access.Attributes{ResourceRequest: true, Verb: verb, Resource: resource, Subresource: sub, Namespace: ns}
	}
	apps := func(verb, resource, ns string) access.Attributes {
		return access.Attributes{ResourceRequest: true, Verb: verb, APIGroup: "apps", Resource: resource, Namespace: ns}
	}
	nina := access.ForUser("nina@t.example")
	tests := []struct {
		name          string
		local, azRBAC bool
		id            access.Identity
		attrs         access.Attributes
		allowed       bool
	}{
		{"writer execs in its namespace", true, true, nina, res("create", "pods", "exec", "payments"), true},
		{"writer impersonates serviceaccounts in its namespace", true, true, nina, res("impersonate", "serviceaccounts", "", "payments"), true},
		{"writer not in another namespace", true, true, nina, res("create", "pods", "exec", "web"), false},
		{"writer not cluster-wide", true, true, nina, res("get", "secrets", "", ""), false},
		{"writer without Azure RBAC", true, false, nina, res("create", "pods", "exec", "payments"), false},
		{"admin group member", false, false, access.ForUser("dana@t.example", azAdmins), res("delete", "nodes", "", ""), true},
		{"Contributor's group with local accounts", true, true, access.ForUser("x@t.example", azOps), res("create", "clusterrolebindings", "", ""), true},
		{"Contributor's group without local accounts", false, true, access.ForUser("x@t.example", azOps), res("create", "clusterrolebindings", "", ""), false},
		{"custom runCommand role with local accounts", true, true, access.ForUser("tom@t.example"), res("get", "secrets", "", "kube-system"), true},
		{"reader reads deployments", true, true, access.ForUser(azSP), apps("list", "deployments", "web"), true},
		{"reader cannot write", true, true, access.ForUser(azSP), apps("create", "deployments", "web"), false},
		// notDataActions subtracted: */read without secrets/read.
		{"reader reads configmaps", true, true, access.ForUser(azSP), res("get", "configmaps", "", "web"), true},
		{"reader cannot read secrets", true, true, access.ForUser(azSP), res("get", "secrets", "", "web"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := access.NewWithAzure(snap, access.AzureGrants(azureDirectory(tt.local, tt.azRBAC)))
			if got := e.Allowed(tt.id, tt.attrs).Allowed; got != tt.allowed {
				t.Errorf("Allowed = %v, want %v", got, tt.allowed)
			}
		})
	}
	e := access.NewWithAzure(snap, access.AzureGrants(azureDirectory(true, true)))
	var who []string
	for _, m := range e.WhoCan(res("create", "pods", "exec", "payments")) {
		who = append(who, m.Subject.GetName()+" via "+m.Binding.String())
	}
	want := []string{
		"nina@t.example via Azure role assignment " + azCluster + "/namespaces/payments/providers/Microsoft.Authorization/roleAssignments/2 (namespace payments) -> Azure role Azure Kubernetes Service RBAC Writer",
		"tom@t.example via Azure role assignment " + azCluster + "/providers/Microsoft.Authorization/roleAssignments/3 -> Azure role Support Operator",
		azAdmins + " via AKS admin group " + azAdmins + " -> cluster-admin",
		azOps + " via Azure role assignment /subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/1 -> Azure role Contributor",
	}
	if diff := cmp.Diff(want, who); diff != "" {
		t.Errorf("WhoCan create pods/exec in payments (-want +got):\n%s", diff)
	}
}

// TestEligibleGrant: an eligible assignment (PIM) is a grant marked
// eligible: WhoCan lists it with a binding that says so, Allowed does not
// count it (Decision.Eligible names it); an activated one counts like a
// standing one and its route says it is time-bound.
func TestEligibleGrant(t *testing.T) {
	const eve = "00000004-0000-4000-8000-000000000004"
	dir := azureDirectory(true, true)
	dir[0].Users = append(dir[0].Users, &secureauditv1.DirectoryUser{Id: eve, UserPrincipalName: "eve@t.example"})
	admin := []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL}
	dir[0].RoleAssignments = append(dir[0].RoleAssignments,
		&secureauditv1.AzureRoleAssignment{Id: azCluster + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e", PrincipalId: eve, PrincipalType: "User", RoleName: "Owner", Scope: azCluster, Routes: admin, Eligible: true},
		&secureauditv1.AzureRoleAssignment{Id: azCluster + "/providers/Microsoft.Authorization/roleAssignments/5", PrincipalId: azNina, PrincipalType: "User", RoleName: "Owner", Scope: azCluster, Routes: admin, Activated: true},
	)
	grants := access.AzureGrants(dir)
	routes := map[string]string{}
	for _, g := range grants {
		if g.Binding.Role == "Owner" {
			routes[g.Subject.GetName()] = g.Route
		}
	}
	want := map[string]string{
		"eve@t.example":  "eligible through PIM, nothing until activated -> listClusterAdminCredential -> client certificate in system:masters (local accounts enabled)",
		"nina@t.example": "listClusterAdminCredential -> client certificate in system:masters (local accounts enabled) (a PIM activation: time-bound, not standing)",
	}
	if diff := cmp.Diff(want, routes); diff != "" {
		t.Errorf("Owner routes (-want +got):\n%s", diff)
	}
	e := access.NewWithAzure(snapshot.Build([]*secureauditv1.SnapshotChunk{{}}, nil), grants)
	req := access.Attributes{Verb: "delete", Resource: "nodes"}
	var eligible []string
	for _, m := range e.WhoCan(req) {
		if m.Binding.Eligible {
			eligible = append(eligible, m.Subject.GetName()+" "+m.Binding.String())
		}
	}
	if diff := cmp.Diff([]string{"eve@t.example eligible Azure role assignment (PIM, activation needed) " + azCluster + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e -> Azure role Owner"}, eligible); diff != "" {
		t.Errorf("eligible who-can matches (-want +got):\n%s", diff)
	}
	d := e.Allowed(access.ForUser("eve@t.example"), req)
	if d.Allowed || len(d.Eligible) != 1 || len(d.Bindings) != 0 {
		t.Errorf("eve: Allowed=%v, %d bindings, %d eligible; want not allowed, one eligible", d.Allowed, len(d.Bindings), len(d.Eligible))
	}
	if d := e.Allowed(access.ForUser("nina@t.example"), req); !d.Allowed {
		t.Error("nina's activated Owner does not allow delete nodes")
	}
}

// TestNotDataActions: a block's notDataActions are subtracted as ARM
// subtracts them: a data action they cover is dropped, one they narrow is
// expanded over the built-in operations without the excluded ones, and
// another block's data actions are not affected (blocks add up).
func TestNotDataActions(t *testing.T) {
	const prefix = "Microsoft.ContainerService/managedClusters/"
	perm := func(data, not []string) *secureauditv1.AzureRolePermission {
		return &secureauditv1.AzureRolePermission{DataActions: data, NotDataActions: not}
	}
	res := func(verb, group, resource, sub string) access.Attributes {
		return access.Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Namespace: "web"}
	}
	tests := []struct {
		name    string
		perms   []*secureauditv1.AzureRolePermission
		allowed map[string]access.Attributes
		denied  map[string]access.Attributes
	}{
		{
			name:    "everything but secrets",
			perms:   []*secureauditv1.AzureRolePermission{perm([]string{prefix + "*"}, []string{prefix + "secrets/*"})},
			allowed: map[string]access.Attributes{"create pods": res("create", "", "pods", ""), "exec": res("create", "", "pods", "exec"), "bind": res("bind", "rbac.authorization.k8s.io", "clusterroles", "")},
			denied:  map[string]access.Attributes{"get secrets": res("get", "", "secrets", ""), "list secrets": res("list", "", "secrets", "")},
		},
		{
			name:    "pods without exec",
			perms:   []*secureauditv1.AzureRolePermission{perm([]string{prefix + "pods/*"}, []string{prefix + "pods/exec/*"})},
			allowed: map[string]access.Attributes{"create pods": res("create", "", "pods", ""), "attach": res("create", "", "pods", "attach")},
			denied:  map[string]access.Attributes{"exec": res("create", "", "pods", "exec"), "get secrets": res("get", "", "secrets", "")},
		},
		{
			name:    "covered entirely",
			perms:   []*secureauditv1.AzureRolePermission{perm([]string{prefix + "pods/read"}, []string{prefix + "pods/*"})},
			allowed: map[string]access.Attributes{},
			denied:  map[string]access.Attributes{"get pods": res("get", "", "pods", "")},
		},
		{
			name:    "another block is not narrowed",
			perms:   []*secureauditv1.AzureRolePermission{perm([]string{prefix + "*"}, []string{prefix + "secrets/*"}), perm([]string{prefix + "secrets/read"}, nil)},
			allowed: map[string]access.Attributes{"get secrets": res("get", "", "secrets", "")},
			denied:  map[string]access.Attributes{"delete secrets": res("delete", "", "secrets", "")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := []*secureauditv1.DirectoryChunk{{
				Users:      []*secureauditv1.DirectoryUser{{Id: azNina, UserPrincipalName: "nina@t.example"}},
				AksCluster: &secureauditv1.AksCluster{Id: azCluster, ManagedEntra: true, AzureRbac: true, KubernetesRbac: true},
				RoleAssignments: []*secureauditv1.AzureRoleAssignment{{
					Id: azCluster + "/providers/Microsoft.Authorization/roleAssignments/x", PrincipalId: azNina, PrincipalType: "User", RoleName: "Custom", Scope: azCluster, CustomRole: true,
					Permissions: tt.perms, Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS},
				}},
			}}
			e := access.NewWithAzure(snapshot.Build([]*secureauditv1.SnapshotChunk{{}}, nil), access.AzureGrants(dir))
			nina := access.ForUser("nina@t.example")
			for what, a := range tt.allowed {
				if !e.Allowed(nina, a).Allowed {
					t.Errorf("%s: denied, want allowed", what)
				}
			}
			for what, a := range tt.denied {
				if e.Allowed(nina, a).Allowed {
					t.Errorf("%s: allowed, want denied", what)
				}
			}
		})
	}
}
