package directory

import (
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Operations whose permission opens a route to an AKS cluster.
const (
	opAdminCredential = "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"
	opUserCredential  = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
	opRunCommand      = "Microsoft.ContainerService/managedClusters/runCommand/action"
	opClusterWrite    = "Microsoft.ContainerService/managedClusters/write"
	opRoleAssignment  = "Microsoft.Authorization/roleAssignments/write"
	// dataPrefix starts every Kubernetes data action of Azure RBAC for
	// Kubernetes authorization.
	dataPrefix = "Microsoft.ContainerService/managedClusters/"
)

// BuiltinRoles are the permissions of the Azure built-in roles that reach
// an AKS cluster, by role name, as Azure's built-in roles reference lists
// them (learn.microsoft.com/azure/role-based-access-control/built-in-roles,
// containers and general sections, read December 2026). The RBAC Reader and
// Writer data actions are abridged to the resources the audit's rules read;
// Contributor's notActions to those about authorization. They are used for
// role assignments of a directory snapshot that carries no permissions, and
// by the fake ARM server.
var BuiltinRoles = map[string][]*secureauditv1.AzureRolePermission{
	"Owner":                     {{Actions: []string{"*"}}},
	"Contributor":               {{Actions: []string{"*"}, NotActions: []string{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action"}}},
	"Reader":                    {{Actions: []string{"*/read"}}},
	"User Access Administrator": {{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}},
	"Azure Kubernetes Service Cluster Admin Role": {{Actions: []string{
		"Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
		"Microsoft.ContainerService/managedClusters/accessProfiles/listCredential/action",
		"Microsoft.ContainerService/managedClusters/read",
		"Microsoft.ContainerService/managedClusters/runcommand/action",
	}}},
	"Azure Kubernetes Service Cluster User Role": {{Actions: []string{
		"Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
		"Microsoft.ContainerService/managedClusters/read",
	}}},
	"Azure Kubernetes Service Contributor Role": {{Actions: []string{
		"Microsoft.Authorization/*/read",
		"Microsoft.ContainerService/managedClusters/read",
		"Microsoft.ContainerService/managedClusters/write",
		"Microsoft.Resources/deployments/*",
		"Microsoft.Resources/subscriptions/resourceGroups/read",
	}}},
	"Azure Kubernetes Service RBAC Cluster Admin": {{
		Actions:     []string{"Microsoft.Authorization/*/read", "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action", "Microsoft.Resources/subscriptions/resourceGroups/read"},
		DataActions: []string{"Microsoft.ContainerService/managedClusters/*"},
	}},
	"Azure Kubernetes Service RBAC Admin": {{
		Actions:     []string{"Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"},
		DataActions: []string{"Microsoft.ContainerService/managedClusters/*"},
		NotDataActions: []string{
			"Microsoft.ContainerService/managedClusters/resourcequotas/write",
			"Microsoft.ContainerService/managedClusters/resourcequotas/delete",
			"Microsoft.ContainerService/managedClusters/namespaces/write",
			"Microsoft.ContainerService/managedClusters/namespaces/delete",
		},
	}},
	"Azure Kubernetes Service RBAC Reader": {{
		Actions: []string{"Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"},
		DataActions: []string{
			"Microsoft.ContainerService/managedClusters/apps/deployments/read",
			"Microsoft.ContainerService/managedClusters/apps/replicasets/read",
			"Microsoft.ContainerService/managedClusters/apps/statefulsets/read",
			"Microsoft.ContainerService/managedClusters/batch/jobs/read",
			"Microsoft.ContainerService/managedClusters/configmaps/read",
			"Microsoft.ContainerService/managedClusters/pods/read",
			"Microsoft.ContainerService/managedClusters/services/read",
		},
	}},
	"Azure Kubernetes Service RBAC Writer": {{
		Actions: []string{"Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"},
		DataActions: []string{
			"Microsoft.ContainerService/managedClusters/apps/deployments/*",
			"Microsoft.ContainerService/managedClusters/apps/replicasets/*",
			"Microsoft.ContainerService/managedClusters/apps/statefulsets/*",
			"Microsoft.ContainerService/managedClusters/batch/jobs/*",
			"Microsoft.ContainerService/managedClusters/configmaps/*",
			"Microsoft.ContainerService/managedClusters/pods/*",
			"Microsoft.ContainerService/managedClusters/secrets/*",
			"Microsoft.ContainerService/managedClusters/serviceaccounts/impersonate/action",
			"Microsoft.ContainerService/managedClusters/services/*",
		},
	}},
}

// Permissions returns the permissions of an assignment's role: its own, or
// the built-in role's of that name when it carries none.
func Permissions(a *secureauditv1.AzureRoleAssignment) []*secureauditv1.AzureRolePermission {
	if len(a.GetPermissions()) > 0 {
		return a.GetPermissions()
	}
	for name, p := range BuiltinRoles {
		if strings.EqualFold(name, a.GetRoleName()) {
			return p
		}
	}
	return nil
}

// Routes returns the routes into an AKS cluster a role with these
// permissions opens, sorted: whatever the role is called, a permission
// block allows an operation when one of its actions matches it and none of
// its notActions does (data actions likewise), and blocks add up.
func Routes(perms []*secureauditv1.AzureRolePermission) []secureauditv1.AzureRoute {
	var out []secureauditv1.AzureRoute
	add := func(r secureauditv1.AzureRoute, ok bool) {
		if ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, p := range perms {
		add(secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL, allows(p.GetActions(), p.GetNotActions(), opAdminCredential))
		add(secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL, allows(p.GetActions(), p.GetNotActions(), opUserCredential))
		add(secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND, allows(p.GetActions(), p.GetNotActions(), opRunCommand))
		add(secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE, allows(p.GetActions(), p.GetNotActions(), opClusterWrite))
		add(secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE, allows(p.GetActions(), p.GetNotActions(), opRoleAssignment))
		add(secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS, slices.ContainsFunc(p.GetDataActions(), func(d string) bool {
			return reachesData(d) && !excluded(p.GetNotDataActions(), d)
		}))
	}
	slices.Sort(out)
	return out
}

// RouteOf returns the assignment's routes: those it carries, or those its
// permissions (or its built-in role's) open.
func RouteOf(a *secureauditv1.AzureRoleAssignment) []secureauditv1.AzureRoute {
	if len(a.GetRoutes()) > 0 {
		return a.GetRoutes()
	}
	return Routes(Permissions(a))
}

func allows(actions, notActions []string, op string) bool {
	return slices.ContainsFunc(actions, func(a string) bool { return Match(a, op) }) &&
		!slices.ContainsFunc(notActions, func(a string) bool { return Match(a, op) })
}

// reachesData reports whether a data action pattern covers some
// Kubernetes data action of a managed cluster.
func reachesData(pattern string) bool {
	p := strings.ToLower(pattern)
	prefix := strings.ToLower(dataPrefix)
	head, _, wild := strings.Cut(p, "*")
	if !wild {
		return strings.HasPrefix(p, prefix) && len(p) > len(prefix)
	}
	return strings.HasPrefix(head, prefix) || strings.HasPrefix(prefix, head)
}

// excluded reports whether the notDataActions remove a data action
// pattern entirely (the same pattern, or one covering all of it).
func excluded(not []string, pattern string) bool {
	return slices.ContainsFunc(not, func(n string) bool { return Match(n, pattern) })
}

// Match reports whether an Azure operation pattern matches an operation:
// case-insensitive, '*' matching any run of characters ('/' included).
func Match(pattern, op string) bool {
	p, s := strings.ToLower(pattern), strings.ToLower(op)
	// Greedy glob with backtracking on the last '*'.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// InCluster reports whether an ARM scope is the cluster, below it (one of
// its namespaces) or above it (its resource group, subscription or a
// management group): where a role assignment must be to reach it. Scopes
// compare case-insensitively. Management groups are above every cluster
// the tenant holds: ARM lists only those above the cluster.
func InCluster(scope, clusterID string) bool {
	s := strings.ToLower(strings.TrimSuffix(scope, "/"))
	c := strings.ToLower(strings.TrimSuffix(clusterID, "/"))
	return s == c || strings.HasPrefix(s, c+"/") || strings.HasPrefix(c, s+"/") ||
		strings.HasPrefix(s, "/providers/microsoft.management/managementgroups/") || s == ""
}
