package access_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const (
	azRG      = "/subscriptions/s/resourceGroups/rg"
	azMember  = "00000005-0000-4000-8000-000000000005" // a member of azOps
	azOuter   = "0000000c-0000-4000-8000-00000000000c" // holds azInner
	azInner   = "0000000d-0000-4000-8000-00000000000d" // holds Tom
	adminCred = "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"
	runCmd    = "Microsoft.ContainerService/managedClusters/runCommand/action"
)

// deniedDirectory is azureDirectory with Tom in a nested group, a member
// in the Contributor group azOps, and the deny assignments given.
func deniedDirectory(denies ...*secureauditv1.AzureDenyAssignment) []*secureauditv1.DirectoryChunk {
	dir := azureDirectory(true, true)
	dir[0].Groups = []*secureauditv1.DirectoryGroup{
		{Id: azAdmins}, {Id: azOps, MemberIds: []string{azMember}},
		{Id: azOuter, MemberIds: []string{azInner}}, {Id: azInner, MemberIds: []string{azTom}},
	}
	dir[0].DenyAssignments = denies
	return dir
}

func deny(scope string, principals []string, perms ...*secureauditv1.AzureRolePermission) *secureauditv1.AzureDenyAssignment {
	return &secureauditv1.AzureDenyAssignment{Id: scope + "/providers/Microsoft.Authorization/denyAssignments/d", Scope: scope, PrincipalIds: principals, Permissions: perms}
}

func actions(a ...string) *secureauditv1.AzureRolePermission {
	return &secureauditv1.AzureRolePermission{Actions: a}
}

// TestWithoutDenied: a route a deny assignment blocks is no grant; each
// case lists the grants left (assignment number and route kind), the admin
// group's being out of Azure RBAC's reach.
func TestWithoutDenied(t *testing.T) {
	everyone := []string{access.Everyone}
	credentials := actions(adminCred, runCmd)
	all := []string{"admin group", "1 credential", "3 credential", "4 data", "2 data"}
	tests := []struct {
		name   string
		denies []*secureauditv1.AzureDenyAssignment
		want   []string
	}{
		{"none", nil, all},
		{"Everyone, at the resource group", []*secureauditv1.AzureDenyAssignment{deny(azRG, everyone, credentials)}, []string{"admin group", "4 data", "2 data"}},
		{"Everyone but the group", []*secureauditv1.AzureDenyAssignment{func() *secureauditv1.AzureDenyAssignment {
			d := deny(azRG, everyone, credentials)
			d.ExcludePrincipalIds = []string{azOps}
			return d
		}()}, []string{"admin group", "1 credential", "4 data", "2 data"}},
		{"Everyone but a member of the group: the group's grant stays", []*secureauditv1.AzureDenyAssignment{func() *secureauditv1.AzureDenyAssignment {
			d := deny(azRG, everyone, credentials)
			d.ExcludePrincipalIds = []string{azMember}
			return d
		}()}, []string{"admin group", "1 credential", "4 data", "2 data"}},
		{"the group named", []*secureauditv1.AzureDenyAssignment{deny(azRG, []string{azOps}, credentials)}, []string{"admin group", "3 credential", "4 data", "2 data"}},
		{"a group holding Tom's group", []*secureauditv1.AzureDenyAssignment{deny(azRG, []string{azOuter}, credentials)}, []string{"admin group", "1 credential", "4 data", "2 data"}},
		{"Tom, but Tom's group excluded", []*secureauditv1.AzureDenyAssignment{func() *secureauditv1.AzureDenyAssignment {
			d := deny(azRG, []string{azTom}, credentials)
			d.ExcludePrincipalIds = []string{azInner}
			return d
		}()}, all},
		{"a member of the group named: the group's grant stays", []*secureauditv1.AzureDenyAssignment{deny(azRG, []string{azMember}, credentials)}, all},
		{"'*' but runCommand in notActions", []*secureauditv1.AzureDenyAssignment{deny(azRG, everyone, &secureauditv1.AzureRolePermission{Actions: []string{"*"}, NotActions: []string{runCmd}})},
			[]string{"admin group", "1 credential", "3 credential", "4 data", "2 data"}},
		{"another action denied", []*secureauditv1.AzureDenyAssignment{deny(azRG, everyone, actions("Microsoft.Storage/*"))}, all},
		{"doNotApplyToChildScopes at the resource group", []*secureauditv1.AzureDenyAssignment{func() *secureauditv1.AzureDenyAssignment {
			d := deny(azRG, everyone, credentials)
			d.DoesNotApplyToChildScopes = true
			return d
		}()}, all},
		{"doNotApplyToChildScopes at the cluster", []*secureauditv1.AzureDenyAssignment{func() *secureauditv1.AzureDenyAssignment {
			d := deny(azCluster, everyone, credentials)
			d.DoesNotApplyToChildScopes = true
			return d
		}()}, []string{"admin group", "4 data", "2 data"}},
		{"a namespace's deny leaves the cluster's routes", []*secureauditv1.AzureDenyAssignment{deny(azCluster+"/namespaces/payments", everyone, credentials)}, all},
		{"every data action in namespace payments", []*secureauditv1.AzureDenyAssignment{deny(azCluster+"/namespaces/payments", everyone, &secureauditv1.AzureRolePermission{DataActions: []string{"Microsoft.ContainerService/managedClusters/*"}})},
			[]string{"admin group", "1 credential", "3 credential", "4 data"}},
		{"every data action at the cluster alone: not subtracted from a cluster-wide grant", []*secureauditv1.AzureDenyAssignment{func() *secureauditv1.AzureDenyAssignment {
			d := deny(azCluster, everyone, &secureauditv1.AzureRolePermission{DataActions: []string{"Microsoft.ContainerService/managedClusters/*"}})
			d.DoesNotApplyToChildScopes = true
			return d
		}()}, all},
		{"every data action on the subscription", []*secureauditv1.AzureDenyAssignment{deny("/subscriptions/s", everyone, &secureauditv1.AzureRolePermission{DataActions: []string{"*"}})},
			[]string{"admin group", "1 credential", "3 credential"}},
		{"a management group's deny reaches the subscription", []*secureauditv1.AzureDenyAssignment{deny("/providers/Microsoft.Management/managementGroups/root", everyone, credentials)}, []string{"admin group", "4 data", "2 data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := deniedDirectory(tt.denies...)
			before := proto.CloneOf(dir[0])
			var got []string
			for _, g := range access.AzureGrants(access.WithoutDenied(dir)) {
				got = append(got, grantName(g))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("grants (-want +got):\n%s", diff)
			}
			if !proto.Equal(before, dir[0]) {
				t.Error("WithoutDenied modified its input")
			}
		})
	}
}

func grantName(g access.AzureGrant) string {
	if g.Assignment == nil {
		return "admin group"
	}
	kind := "data"
	if g.Credential {
		kind = "credential"
	}
	id := g.Assignment.GetId()
	return fmt.Sprintf("%s %s", id[len(id)-1:], kind)
}

// TestDeniedDataActions: denied data actions are subtracted from a grant
// (can-i answers no, who-can leaves the grant out for them) and the rest
// of the grant stays; a deny block with notDataActions denies all but
// those.
func TestDeniedDataActions(t *testing.T) {
	snap := snapshot.Build([]*secureauditv1.SnapshotChunk{{}}, nil)
	res := func(verb, resource, sub, ns string) access.Attributes {
		return access.Attributes{ResourceRequest: true, Verb: verb, Resource: resource, Subresource: sub, Namespace: ns}
	}
	nina, sp := access.ForUser("nina@t.example"), access.ForUser(azSP)
	secrets := deny(azCluster, []string{access.Everyone}, &secureauditv1.AzureRolePermission{DataActions: []string{"Microsoft.ContainerService/managedClusters/secrets/*"}})
	allButPods := deny(azRG, []string{azSP}, &secureauditv1.AzureRolePermission{
		DataActions: []string{"Microsoft.ContainerService/managedClusters/*"}, NotDataActions: []string{"Microsoft.ContainerService/managedClusters/pods/read"},
	})
	tests := []struct {
		name    string
		deny    *secureauditv1.AzureDenyAssignment
		id      access.Identity
		attrs   access.Attributes
		allowed bool
	}{
		{"secrets denied: the writer cannot read them", secrets, nina, res("get", "secrets", "", "payments"), false},
		{"secrets denied: the writer still execs", secrets, nina, res("create", "pods", "exec", "payments"), true},
		{"secrets denied: the reader still reads configmaps", secrets, sp, res("get", "configmaps", "", "web"), true},
		{"all but pods/read: the reader lists pods", allButPods, sp, res("list", "pods", "", "web"), true},
		{"all but pods/read: the reader cannot read configmaps", allButPods, sp, res("get", "configmaps", "", "web"), false},
		{"all but pods/read: another principal untouched", allButPods, nina, res("get", "secrets", "", "payments"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := access.NewWithAzure(snap, access.AzureGrants(access.WithoutDenied(deniedDirectory(tt.deny))))
			if got := e.Allowed(tt.id, tt.attrs).Allowed; got != tt.allowed {
				t.Errorf("Allowed = %v, want %v", got, tt.allowed)
			}
		})
	}
	e := access.NewWithAzure(snap, access.AzureGrants(access.WithoutDenied(deniedDirectory(secrets))))
	for _, m := range e.WhoCan(res("get", "secrets", "", "payments")) {
		if m.Subject.GetName() == "nina@t.example" {
			t.Errorf("who-can get secrets lists Nina despite the deny assignment: %s", m.Binding)
		}
	}
}

// BenchmarkWithoutDenied applies 20 deny assignments (Everyone with five
// excluded groups each, credential actions and secrets data actions) to a
// directory of 10,000 role assignments (a tenth to groups of 200 members)
// and 20,000 users.
func BenchmarkWithoutDenied(b *testing.B) {
	id := func(kind, i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, i) }
	c := &secureauditv1.DirectoryChunk{AksCluster: &secureauditv1.AksCluster{Id: azCluster, LocalAccountsEnabled: true, AzureRbac: true}}
	for g := range 100 {
		grp := &secureauditv1.DirectoryGroup{Id: id(2, g)}
		for m := range 200 {
			grp.MemberIds = append(grp.MemberIds, id(1, g*200+m))
		}
		c.Groups = append(c.Groups, grp)
	}
	perms := []*secureauditv1.AzureRolePermission{{DataActions: []string{"Microsoft.ContainerService/managedClusters/*"}}}
	routes := []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND, secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS}
	for i := range 10000 {
		principal, typ := id(1, i), "User"
		if i%10 == 0 {
			principal, typ = id(2, i/10%100), "Group"
		}
		c.RoleAssignments = append(c.RoleAssignments, &secureauditv1.AzureRoleAssignment{
			Id: fmt.Sprintf("%s/providers/Microsoft.Authorization/roleAssignments/%d", azRG, i), PrincipalId: principal, PrincipalType: typ,
			RoleName: "r", Scope: azRG, Permissions: perms, Routes: routes,
		})
	}
	for d := range 20 {
		x := deny(azRG, []string{access.Everyone}, actions(adminCred, runCmd), &secureauditv1.AzureRolePermission{DataActions: []string{"Microsoft.ContainerService/managedClusters/secrets/*"}})
		x.Id += fmt.Sprint(d)
		for e := range 5 {
			x.ExcludePrincipalIds = append(x.ExcludePrincipalIds, id(2, (d*5+e)%100))
		}
		c.DenyAssignments = append(c.DenyAssignments, x)
	}
	dir := []*secureauditv1.DirectoryChunk{c}
	b.ReportAllocs()
	for b.Loop() {
		if len(access.WithoutDenied(dir)[0].GetRoleAssignments()) == 0 {
			b.Fatal("every assignment dropped")
		}
	}
}
