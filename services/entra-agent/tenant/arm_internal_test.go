package tenant

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
)

// TestDenyOfCondition leaves out a deny assignment's permission blocks
// with a condition (the audit cannot evaluate it, so it does not count
// the block as denying), and a deny assignment with nothing else.
func TestDenyOfCondition(t *testing.T) {
	const cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
	admin := "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"
	everyone := &armauthorization.Principal{ID: ptr("00000000-0000-0000-0000-000000000000"), Type: ptr("SystemDefined")}
	deny := func(perms ...*armauthorization.DenyAssignmentPermission) *armauthorization.DenyAssignment {
		return &armauthorization.DenyAssignment{ID: ptr(cluster + "/providers/Microsoft.Authorization/denyAssignments/d"), Properties: &armauthorization.DenyAssignmentProperties{
			Scope: ptr(cluster), Permissions: perms, Principals: []*armauthorization.Principal{everyone},
		}}
	}
	conditional := &armauthorization.DenyAssignmentPermission{Actions: []*string{&admin}, Condition: ptr("@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'x'")}
	plain := &armauthorization.DenyAssignmentPermission{Actions: []*string{&admin}}
	if got := denyOf(deny(conditional), cluster, map[string]bool{}); got != nil {
		t.Errorf("a deny assignment with only a conditional block kept: %v", got)
	}
	got := denyOf(deny(conditional, plain), cluster, map[string]bool{})
	if got == nil || len(got.GetPermissions()) != 1 || got.GetPermissions()[0].GetActions()[0] != admin {
		t.Errorf("conditional and plain blocks: kept %v, want the plain block alone", got)
	}
	groups := map[string]bool{}
	d := deny(plain)
	d.Properties.ExcludePrincipals = []*armauthorization.Principal{{ID: ptr("5D8A06C1-FD90-4AC2-83C5-6182957A6376"), Type: ptr("Group")}}
	if got := denyOf(d, cluster, groups); got.GetExcludePrincipalIds()[0] != "5d8a06c1-fd90-4ac2-83c5-6182957a6376" || !groups["5d8a06c1-fd90-4ac2-83c5-6182957a6376"] {
		t.Errorf("excluded group: ids %v, groups to read %v", got.GetExcludePrincipalIds(), groups)
	}
}
