package review

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// TestAzureRoutes: with the AKS cluster in the directory's answer, the
// review lists the admin group, and every user and group holding a role
// assignment that reaches the cluster, each grant with its route spelled
// out for the cluster's configuration; a group bound in Kubernetes too has
// one item with both; service principals are left out.
func TestAzureRoutes(t *testing.T) {
	const (
		cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
		admins  = "0000000a-0000-4000-8000-00000000000a"
		nobody  = "0000000c-0000-4000-8000-00000000000c"
	)
	dir := directory()
	dir[0].Groups = append(dir[0].Groups, &secureauditv1.DirectoryGroup{Id: admins, DisplayName: "aks-admins", MemberIds: []string{"00000000-0000-4000-8000-000000000001"}})
	dir[0].AksCluster = &secureauditv1.AksCluster{Id: cluster, LocalAccountsEnabled: true, ManagedEntra: true, AzureRbac: true, AdminGroupObjectIds: []string{admins}}
	dir[0].RoleAssignments = []*secureauditv1.AzureRoleAssignment{
		{Id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/1", PrincipalId: groupID, PrincipalType: "Group", RoleName: "Contributor", Scope: "/subscriptions/s/resourceGroups/rg",
			Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND, secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE}},
		{Id: cluster + "/namespaces/payments/providers/Microsoft.Authorization/roleAssignments/2", PrincipalId: "00000000-0000-4000-8000-000000000001", PrincipalType: "User", RoleName: "Azure Kubernetes Service RBAC Writer", Scope: cluster + "/namespaces/payments",
			Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS}},
		{Id: cluster + "/providers/Microsoft.Authorization/roleAssignments/3", PrincipalId: nobody, PrincipalType: "User", RoleName: "Ops", CustomRole: true, Scope: cluster,
			Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND}},
		{Id: cluster + "/providers/Microsoft.Authorization/roleAssignments/4", PrincipalId: "0000000d-0000-4000-8000-00000000000d", PrincipalType: "ServicePrincipal", RoleName: "Owner", Scope: cluster,
			Routes: []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL}},
	}
	got, _ := Subjects(snapshot.Build(chunks(), dir), dir, nil)
	grants := map[string][]*secureauditv1.AccessGrant{}
	for _, s := range got {
		grants[s.GetSubject().GetKind().String()+"/"+s.GetSubject().GetName()] = s.GetGrants()
	}
	clusterScope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	want := map[string][]*secureauditv1.AccessGrant{
		"SUBJECT_KIND_GROUP/" + admins: {{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP, Name: admins},
			Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Scope:   clusterScope,
			Route:   "member of the cluster's admin group (aadProfile.adminGroupObjectIDs) -> cluster-admin without any Kubernetes binding",
		}},
		"SUBJECT_KIND_USER/Alice@contoso.com": {{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: cluster + "/namespaces/payments/providers/Microsoft.Authorization/roleAssignments/2", Namespace: "payments"},
			Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: "Azure Kubernetes Service RBAC Writer"},
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "payments"},
			Route:   "Azure Kubernetes Service RBAC Writer on namespace payments: Kubernetes data actions through Azure RBAC for Kubernetes, in namespace payments",
		}},
		"SUBJECT_KIND_USER/" + nobody: {{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: cluster + "/providers/Microsoft.Authorization/roleAssignments/3"},
			Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: "Ops"},
			Scope:   clusterScope,
			Route:   "Ops (custom role) on the cluster: runCommand -> kubectl as cluster-admin through ARM (local accounts enabled)",
		}},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, grants[k], protocmp.Transform()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	// The group bound in Kubernetes keeps its bindings and gains the
	// Contributor route.
	g := grants["SUBJECT_KIND_GROUP/"+groupID]
	if len(g) != 3 || g[0].GetRoute() != "Contributor on resource group rg: listClusterAdminCredential -> client certificate in system:masters (local accounts enabled); "+
		"listClusterUserCredential -> a kubeconfig that still needs Kubernetes or Azure RBAC; runCommand -> kubectl as cluster-admin through ARM (local accounts enabled); "+
		"managedClusters/write -> can enable local accounts or change the admin groups" {
		t.Errorf("group %s grants = %v", groupID, g)
	}
	if _, ok := grants["SUBJECT_KIND_USER/0000000d-0000-4000-8000-00000000000d"]; ok {
		t.Error("a service principal is a review subject")
	}
	// Without the cluster, no Azure route is listed.
	dir[0].AksCluster = nil
	got, _ = Subjects(snapshot.Build(chunks(), dir), dir, nil)
	for _, s := range got {
		for _, gr := range s.GetGrants() {
			if gr.GetRoute() != "" {
				t.Errorf("route listed without a cluster: %v", gr)
			}
		}
	}
}

// TestEligible: an eligible role assignment (PIM) is a review item marked
// eligible, its route saying so with its end; an activated one says it is
// time-bound; a group's eligible members (PIM for Groups) are listed among
// its members marked eligible, a standing member only once, unmarked.
func TestEligible(t *testing.T) {
	const (
		cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
		admins  = "0000000a-0000-4000-8000-00000000000a"
		alice   = "00000000-0000-4000-8000-000000000001"
		bob     = "0000000e-0000-4000-8000-00000000000e"
	)
	dir := directory()
	dir[0].Users = append(dir[0].Users, &secureauditv1.DirectoryUser{Id: bob, UserPrincipalName: "bob@contoso.com", DisplayName: "Bob", AccountEnabled: true})
	dir[0].Groups = append(dir[0].Groups, &secureauditv1.DirectoryGroup{Id: admins, DisplayName: "aks-admins", MemberIds: []string{alice}, EligibleMemberIds: []string{alice, bob}})
	dir[0].AksCluster = &secureauditv1.AksCluster{Id: cluster, LocalAccountsEnabled: true, ManagedEntra: true, AzureRbac: true, AdminGroupObjectIds: []string{admins}}
	admin := []secureauditv1.AzureRoute{secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL}
	dir[0].RoleAssignments = []*secureauditv1.AzureRoleAssignment{
		{Id: cluster + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e1", PrincipalId: bob, PrincipalType: "User", RoleName: "Owner", Scope: cluster,
			Routes: admin, Eligible: true, EligibleUntil: timestamppb.New(time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC))},
		{Id: cluster + "/providers/Microsoft.Authorization/roleAssignments/a1", PrincipalId: alice, PrincipalType: "User", RoleName: "Owner", Scope: cluster,
			Routes: admin, Activated: true},
	}
	got, _ := Subjects(snapshot.Build(chunks(), dir), dir, nil)
	bySubject := map[string]*secureauditv1.ReviewSubject{}
	for _, s := range got {
		bySubject[s.GetSubject().GetName()] = s
	}
	wantBob := &secureauditv1.AccessGrant{
		Binding:  &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: cluster + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e1"},
		Role:     &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: "Owner"},
		Scope:    &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		Route:    "eligible through PIM (until 2027-06-30; nothing until activated): Owner on the cluster: listClusterAdminCredential -> client certificate in system:masters (local accounts enabled)",
		Eligible: true,
	}
	if diff := cmp.Diff([]*secureauditv1.AccessGrant{wantBob}, bySubject["bob@contoso.com"].GetGrants(), protocmp.Transform()); diff != "" {
		t.Errorf("bob (-want +got):\n%s", diff)
	}
	var aliceRoute string
	for _, g := range bySubject["Alice@contoso.com"].GetGrants() {
		if g.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
			aliceRoute = g.GetRoute()
			if g.GetEligible() {
				t.Error("an activated assignment is marked eligible")
			}
		}
	}
	if want := "Owner on the cluster: listClusterAdminCredential -> client certificate in system:masters (local accounts enabled) (a PIM activation: time-bound, not standing)"; aliceRoute != want {
		t.Errorf("alice's route = %q, want %q", aliceRoute, want)
	}
	var members []string
	for _, m := range bySubject[admins].GetMembers() {
		members = append(members, fmt.Sprintf("%s eligible=%v", m.GetUserPrincipalName(), m.GetEligible()))
	}
	if diff := cmp.Diff([]string{"Alice@contoso.com eligible=false", "bob@contoso.com eligible=true"}, members); diff != "" {
		t.Errorf("admin group members (-want +got):\n%s", diff)
	}
}

// TestActivatedAndEligibleOwners: a group member present through a PIM
// for Groups activation is marked activated with the activation's end
// (one without an end given is marked without it), a standing member is
// not; an eligible owner is listed among the owners marked eligible, an
// eligible owner that already owns is not listed twice.
func TestActivatedAndEligibleOwners(t *testing.T) {
	const (
		cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
		admins  = "0000000a-0000-4000-8000-00000000000a"
		alice   = "00000000-0000-4000-8000-000000000001"
		carol   = "0000000c-0000-4000-8000-00000000000c"
		dave    = "0000000d-0000-4000-8000-00000000000d"
		erin    = "0000000f-0000-4000-8000-00000000000f"
	)
	end := time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC)
	dir := directory()
	dir[0].Users = append(dir[0].Users,
		&secureauditv1.DirectoryUser{Id: carol, UserPrincipalName: "carol@contoso.com", AccountEnabled: true},
		&secureauditv1.DirectoryUser{Id: dave, UserPrincipalName: "dave@contoso.com", AccountEnabled: true},
		&secureauditv1.DirectoryUser{Id: erin, UserPrincipalName: "erin@contoso.com", AccountEnabled: true})
	dir[0].Groups = append(dir[0].Groups, &secureauditv1.DirectoryGroup{
		Id: admins, DisplayName: "aks-admins", MemberIds: []string{alice, carol, dave}, OwnerIds: []string{erin},
		ActivatedMemberIds: []string{carol, dave}, ActivationEnds: map[string]*timestamppb.Timestamp{carol: timestamppb.New(end)},
		EligibleOwnerIds: []string{dave, erin},
	})
	dir[0].AksCluster = &secureauditv1.AksCluster{Id: cluster, LocalAccountsEnabled: true, ManagedEntra: true, AdminGroupObjectIds: []string{admins}}
	got, _ := Subjects(snapshot.Build(chunks(), dir), dir, nil)
	var g *secureauditv1.ReviewSubject
	for _, s := range got {
		if s.GetSubject().GetName() == admins {
			g = s
		}
	}
	if g == nil {
		t.Fatal("the admin group is not a review subject")
	}
	var members, owners []string
	for _, m := range g.GetMembers() {
		s := fmt.Sprintf("%s activated=%v", m.GetUserPrincipalName(), m.GetActivated())
		if u := m.GetActivatedUntil(); u != nil {
			s += " until " + u.AsTime().Format(time.RFC3339)
		}
		members = append(members, s)
	}
	for _, o := range g.GetOwners() {
		owners = append(owners, fmt.Sprintf("%s eligible=%v", o.GetUserPrincipalName(), o.GetEligible()))
	}
	if diff := cmp.Diff([]string{"Alice@contoso.com activated=false", "carol@contoso.com activated=true until 2026-12-07T16:30:00Z", "dave@contoso.com activated=true"}, members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"erin@contoso.com eligible=false", "dave@contoso.com eligible=true"}, owners); diff != "" {
		t.Errorf("owners (-want +got):\n%s", diff)
	}
}
