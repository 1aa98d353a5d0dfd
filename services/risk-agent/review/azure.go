package review

import (
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// azureGrant is one route into the cluster through Azure, for the review.
type azureGrant struct {
	subject *secureauditv1.Subject
	grant   *secureauditv1.AccessGrant
}

// azureAccess lists the users and groups that reach the cluster through
// Azure, from the directory's answer: the members of the cluster's admin
// groups (the group itself is the review subject) and every role
// assignment whose role opens a route, each with the route spelled out
// as the cluster's configuration makes it work. Users are named by UPN
// when the directory holds them (as AKS names them, so that a person bound
// in Kubernetes too has one review item), groups by object ID. Service
// principals are left to the identity findings: the review is of people.
func azureAccess(snap *snapshot.Snapshot, dir []*secureauditv1.DirectoryChunk) []azureGrant {
	var cluster *secureauditv1.AksCluster
	var assignments []*secureauditv1.AzureRoleAssignment
	seen := map[string]bool{}
	for _, c := range dir {
		if cluster == nil {
			cluster = c.GetAksCluster()
		}
		for _, a := range c.GetRoleAssignments() {
			if !seen[strings.ToLower(a.GetId())] {
				seen[strings.ToLower(a.GetId())] = true
				assignments = append(assignments, a)
			}
		}
	}
	if cluster == nil {
		return nil
	}
	clusterScope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	var out []azureGrant
	for _, g := range cluster.GetAdminGroupObjectIds() {
		out = append(out, azureGrant{
			subject: &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: strings.ToLower(g)},
			grant: &secureauditv1.AccessGrant{
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP, Name: strings.ToLower(g)},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
				Scope:   clusterScope,
				Route:   "member of the cluster's admin group (aadProfile.adminGroupObjectIDs) -> cluster-admin without any Kubernetes binding",
			},
		})
	}
	for _, a := range assignments {
		if len(a.GetRoutes()) == 0 {
			continue
		}
		id := strings.ToLower(a.GetPrincipalId())
		var sub *secureauditv1.Subject
		u, isUser := snap.UserByID(id)
		_, isGroup := snap.GroupByID(id)
		switch {
		case strings.EqualFold(a.GetPrincipalType(), "Group") || isGroup:
			sub = &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: id}
		case isUser:
			sub = &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: u.GetUserPrincipalName()}
		case strings.EqualFold(a.GetPrincipalType(), "User"):
			sub = &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: id}
		default:
			continue // a service principal
		}
		scope, ns := clusterScope, truncate(access.ScopeNamespace(a.GetScope(), cluster.GetId()), 63)
		if ns != "" {
			scope = &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: ns}
		}
		out = append(out, azureGrant{
			subject: sub,
			grant: &secureauditv1.AccessGrant{
				Binding:  &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: truncate(a.GetId(), 1024), Namespace: ns},
				Role:     &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: truncate(a.GetRoleName(), 253)},
				Scope:    scope,
				Route:    truncate(route(a, cluster, ns), 2048),
				Eligible: a.GetEligible(),
			},
		})
	}
	return out
}

// route spells out how an assignment reaches the cluster: its role at its
// scope, then each route its role opens and what it gives on this
// cluster's configuration.
func route(a *secureauditv1.AzureRoleAssignment, c *secureauditv1.AksCluster, ns string) string {
	local, entra := c.GetLocalAccountsEnabled(), c.GetManagedEntra()
	var steps []string
	for _, r := range a.GetRoutes() {
		switch r {
		case secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL:
			if local {
				steps = append(steps, "listClusterAdminCredential -> client certificate in system:masters (local accounts enabled)")
			} else {
				steps = append(steps, "listClusterAdminCredential (refused while local accounts are disabled)")
			}
		case secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL:
			if local && !entra {
				steps = append(steps, "listClusterUserCredential -> client certificate in system:masters (no Entra integration)")
			} else {
				steps = append(steps, "listClusterUserCredential -> a kubeconfig that still needs Kubernetes or Azure RBAC")
			}
		case secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND:
			switch {
			case c.GetRunCommandDisabled():
				steps = append(steps, "runCommand (disabled on the cluster)")
			case local:
				steps = append(steps, "runCommand -> kubectl as cluster-admin through ARM (local accounts enabled)")
			default:
				steps = append(steps, "runCommand -> kubectl as the caller's own Entra identity")
			}
		case secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS:
			where := "cluster-wide"
			if ns != "" {
				where = "in namespace " + ns
			}
			if c.GetAzureRbac() {
				steps = append(steps, "Kubernetes data actions through Azure RBAC for Kubernetes, "+where)
			} else {
				steps = append(steps, "Kubernetes data actions (ignored while Azure RBAC for Kubernetes is disabled)")
			}
		case secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE:
			steps = append(steps, "managedClusters/write -> can enable local accounts or change the admin groups")
		case secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE:
			steps = append(steps, "roleAssignments/write -> can grant any of these roles to anyone")
		}
	}
	role := a.GetRoleName()
	if a.GetCustomRole() {
		role += " (custom role)"
	}
	text := role + " on " + access.ScopeName(a.GetScope(), c.GetId()) + ": " + strings.Join(slices.Compact(steps), "; ")
	switch {
	case a.GetEligible():
		// Privileged Identity Management: nothing until activated.
		until := "no end"
		if t := a.GetEligibleUntil(); t != nil {
			until = "until " + t.AsTime().UTC().Format("2006-01-02")
		}
		text = "eligible through PIM (" + until + "; nothing until activated): " + text
	case a.GetActivated():
		text += " (a PIM activation: time-bound, not standing)"
	}
	return text
}
