package directory_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

func TestRoutes(t *testing.T) {
	type r = secureauditv1.AzureRoute
	const (
		admin = secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL
		user  = secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL
		run   = secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND
		data  = secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS
		write = secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE
		grant = secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE
	)
	perm := func(actions, not, dataActions, notData []string) []*secureauditv1.AzureRolePermission {
		return []*secureauditv1.AzureRolePermission{{Actions: actions, NotActions: not, DataActions: dataActions, NotDataActions: notData}}
	}
	tests := []struct {
		name  string
		perms []*secureauditv1.AzureRolePermission
		want  []r
	}{
		{"Owner", directory.BuiltinRoles["Owner"], []r{admin, user, run, write, grant}},
		{"Contributor cannot write role assignments", directory.BuiltinRoles["Contributor"], []r{admin, user, run, write}},
		{"Reader reaches nothing", directory.BuiltinRoles["Reader"], nil},
		{"User Access Administrator grants", directory.BuiltinRoles["User Access Administrator"], []r{grant}},
		{"RBAC Cluster Admin", directory.BuiltinRoles["Azure Kubernetes Service RBAC Cluster Admin"], []r{user, data}},
		{"custom role, any name, case-insensitive", perm([]string{"microsoft.containerservice/managedclusters/LISTCLUSTERADMINCREDENTIAL/action"}, nil, nil, nil), []r{admin}},
		{"provider wildcard", perm([]string{"Microsoft.ContainerService/*"}, nil, nil, nil), []r{admin, user, run, write}},
		{"excluded by notActions", perm([]string{"Microsoft.ContainerService/managedClusters/*"}, []string{"Microsoft.ContainerService/managedClusters/list*"}, nil, nil), []r{run, write}},
		// ARM subtracts a block's notActions from its actions: '*' without
		// listClusterAdminCredential is no admin-credential route.
		{"'*' without listClusterAdminCredential", perm([]string{"*"}, []string{"Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"}, nil, nil), []r{user, run, write, grant}},
		{"'*' without the cluster and authorization", perm([]string{"*"}, []string{"Microsoft.ContainerService/*", "Microsoft.Authorization/*"}, nil, nil), nil},
		// Blocks add up: another block's action is not removed by a
		// notAction of the first.
		{"notActions of one block only", append(perm([]string{"*"}, []string{"Microsoft.ContainerService/*"}, nil, nil), perm([]string{"Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"}, nil, nil, nil)...), []r{admin, grant}},
		{"data actions on every resource", perm(nil, nil, []string{"*"}, nil), []r{data}},
		{"data actions read everywhere", perm(nil, nil, []string{"Microsoft.ContainerService/managedClusters/*/read"}, nil), []r{data}},
		{"data actions of another provider", perm(nil, nil, []string{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"}, nil), nil},
		{"data actions fully excluded", perm(nil, nil, []string{"Microsoft.ContainerService/managedClusters/pods/read"}, []string{"Microsoft.ContainerService/managedClusters/pods/*"}), nil},
		{"blocks add up", append(perm([]string{"Microsoft.ContainerService/managedClusters/runCommand/action"}, nil, nil, nil), perm(nil, nil, []string{"Microsoft.ContainerService/managedClusters/secrets/read"}, nil)...), []r{run, data}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, directory.Routes(tt.perms)); diff != "" {
				t.Errorf("Routes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInCluster(t *testing.T) {
	const rg = "/subscriptions/s/resourceGroups/rg"
	const cluster = rg + "/providers/Microsoft.ContainerService/managedClusters/aks"
	tests := []struct {
		scope string
		want  bool
	}{
		{cluster, true},
		{cluster + "/namespaces/payments", true},
		{"/SUBSCRIPTIONS/s/resourcegroups/RG", true},
		{"/subscriptions/s", true},
		{"/providers/Microsoft.Management/managementGroups/root", true},
		{"/", true},
		{rg + "/providers/Microsoft.ContainerService/managedClusters/aks2", false},
		{rg + "/providers/Microsoft.Storage/storageAccounts/st", false},
		{"/subscriptions/other", false},
	}
	for _, tt := range tests {
		if got := directory.InCluster(tt.scope, cluster); got != tt.want {
			t.Errorf("InCluster(%q) = %v, want %v", tt.scope, got, tt.want)
		}
	}
}
