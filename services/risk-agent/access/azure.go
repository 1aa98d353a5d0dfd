package access

import (
	"cmp"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// AzureGrant is a grant of Kubernetes permissions through Azure on AKS,
// read from the directory chunks the entra-agent returned: a member of the
// cluster's admin groups, or a role assignment whose role opens a route
// into the cluster. It is a grant like a binding: the engine built with it
// (NewWithAzure) answers who-can, can-i and effective permissions with it
// beside the Kubernetes bindings.
type AzureGrant struct {
	// Binding names the grant: kind BINDING_KIND_AZURE_ROLE_ASSIGNMENT
	// (Name the assignment's ARM ID, Role the Azure role's name) or
	// BINDING_KIND_AKS_ADMIN_GROUP (Name the group's object ID); Namespace
	// is set for an assignment at a namespace's scope.
	Binding Binding
	// Subject is who holds it: a User (named by UPN when the directory
	// knows the user, else by object ID, as a service principal is) or a
	// Group (by object ID), as AKS's Entra authentication names them.
	Subject *secureauditv1.Subject
	// Rules are the Kubernetes permissions it gives.
	Rules []*secureauditv1.PolicyRule
	// Route spells out how it reaches the cluster, such as
	// "listClusterAdminCredential -> system:masters (local accounts enabled)".
	Route string
	// Activated marks an active assignment that is a PIM activation of an
	// eligible one: time-bound, not standing.
	Activated bool
	// Assignment is the role assignment behind the grant; nil for an
	// admin group.
	Assignment *secureauditv1.AzureRoleAssignment
}

// clusterAdmin is every permission: what system:masters and cluster-admin
// give.
var clusterAdmin = []*secureauditv1.PolicyRule{
	{Verbs: []string{all}, ApiGroups: []string{all}, Resources: []string{all}},
	{Verbs: []string{all}, NonResourceUrls: []string{all}},
}

// Route texts.
const (
	routeAdminGroup      = "member of the cluster's admin group (aadProfile.adminGroupObjectIDs) -> cluster-admin"
	routeAdminCredential = "listClusterAdminCredential -> client certificate in system:masters (local accounts enabled)"
	routeUserCredential  = "listClusterUserCredential -> client certificate in system:masters (local accounts enabled, no Entra integration)"
	routeRunCommand      = "runCommand -> kubectl as cluster-admin through ARM (local accounts enabled, run command not disabled)"
	routeDataActions     = "Kubernetes data actions through Azure RBAC for Kubernetes"
	// routeEligible opens the route of an eligible assignment.
	routeEligible = "eligible through PIM, nothing until activated -> "
	// routeActivated closes the route of a PIM activation.
	routeActivated = " (a PIM activation: time-bound, not standing)"
)

// AzureGrants returns the grants through Azure that the directory chunks
// describe, sorted by binding then subject. Without an AKS cluster in the
// chunks there are none. The routes are taken as the cluster makes them
// work:
//
//   - a member of an admin group is cluster-admin;
//   - listClusterAdminCredential gives a system:masters certificate only
//     while local accounts are enabled; so does listClusterUserCredential
//     on a cluster without Entra integration;
//   - runCommand runs as cluster-admin while local accounts are enabled
//     and run command is not disabled (otherwise it runs as the caller,
//     which grants nothing new);
//   - Kubernetes data actions count only when the cluster enables Azure
//     RBAC for Kubernetes, at the namespace of a namespace-scoped
//     assignment and everywhere otherwise. A data action
//     Microsoft.ContainerService/managedClusters/[GROUP/]RESOURCE[/SUB]/VERB
//     maps read to get, list, watch; write to create, update, patch;
//     delete to delete, deletecollection; NAME/action to the verb NAME
//     (exec, attach and portforward to create and get on that
//     subresource); '*' to everything. notDataActions are not subtracted
//     (RBAC has no deny rule): a role that excludes some data actions is
//     over-approximated, and its route says so.
//
// An eligible assignment of Privileged Identity Management gives the same
// grant marked eligible (Binding.Eligible, its route opening with
// "eligible through PIM"): WhoCan lists it, Allowed does not count it. An
// active assignment that is a PIM activation is a grant like any other,
// marked Activated.
//
// Routes that need a change first (managedClusters/write,
// roleAssignments/write) give no grant here.
func AzureGrants(dir []*secureauditv1.DirectoryChunk) []AzureGrant {
	var cluster *secureauditv1.AksCluster
	users := map[string]*secureauditv1.DirectoryUser{}
	groups := map[string]bool{}
	seen := map[string]bool{}
	var assignments []*secureauditv1.AzureRoleAssignment
	for _, c := range dir {
		if cluster == nil {
			cluster = c.GetAksCluster()
		}
		for _, u := range c.GetUsers() {
			users[strings.ToLower(u.GetId())] = u
		}
		for _, g := range c.GetGroups() {
			groups[strings.ToLower(g.GetId())] = true
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
	var out []AzureGrant
	for _, g := range cluster.GetAdminGroupObjectIds() {
		out = append(out, AzureGrant{
			Binding: Binding{Kind: secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP, Name: strings.ToLower(g), Role: "cluster-admin"},
			Subject: &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: strings.ToLower(g)},
			Rules:   clusterAdmin,
			Route:   routeAdminGroup,
		})
	}
	for _, a := range assignments {
		sub := azureSubject(a, users, groups)
		ns := namespaceOf(a.GetScope(), cluster.GetId())
		b := Binding{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Namespace: ns, Name: a.GetId(), Role: a.GetRoleName(), Eligible: a.GetEligible()}
		// pim turns a route into what an eligible or activated assignment
		// gives.
		pim := func(route string) string {
			switch {
			case a.GetEligible():
				return routeEligible + route
			case a.GetActivated():
				return route + routeActivated
			}
			return route
		}
		routes := a.GetRoutes()
		has := func(r secureauditv1.AzureRoute) bool { return slices.Contains(routes, r) }
		local := cluster.GetLocalAccountsEnabled()
		var admin []string
		if local && has(secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL) {
			admin = append(admin, routeAdminCredential)
		}
		if local && !cluster.GetManagedEntra() && has(secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL) {
			admin = append(admin, routeUserCredential)
		}
		if local && !cluster.GetRunCommandDisabled() && has(secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND) {
			admin = append(admin, routeRunCommand)
		}
		if len(admin) > 0 {
			// Credentials and run command reach the whole cluster, whatever
			// the assignment's scope below it.
			cb := b
			cb.Namespace = ""
			out = append(out, AzureGrant{Binding: cb, Subject: sub, Rules: clusterAdmin, Route: pim(strings.Join(admin, "; ")), Activated: a.GetActivated(), Assignment: a})
		}
		if cluster.GetAzureRbac() && has(secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS) {
			rules, excluded := dataRules(a.GetPermissions())
			if len(rules) == 0 {
				continue
			}
			route := routeDataActions
			if len(excluded) > 0 {
				route += " (notDataActions " + strings.Join(excluded, ", ") + " not subtracted)"
			}
			out = append(out, AzureGrant{Binding: b, Subject: sub, Rules: rules, Route: pim(route), Activated: a.GetActivated(), Assignment: a})
		}
	}
	slices.SortFunc(out, func(x, y AzureGrant) int {
		return cmp.Or(compareBindings(x.Binding, y.Binding), cmp.Compare(x.Subject.GetName(), y.Subject.GetName()))
	})
	return slices.CompactFunc(out, func(x, y AzureGrant) bool {
		return x.Binding == y.Binding && x.Subject.GetName() == y.Subject.GetName() && x.Route == y.Route
	})
}

// azureSubject names an assignment's principal as Kubernetes sees it.
func azureSubject(a *secureauditv1.AzureRoleAssignment, users map[string]*secureauditv1.DirectoryUser, groups map[string]bool) *secureauditv1.Subject {
	id := strings.ToLower(a.GetPrincipalId())
	if strings.EqualFold(a.GetPrincipalType(), "Group") || groups[id] {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: id}
	}
	if u, ok := users[id]; ok && u.GetUserPrincipalName() != "" {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: u.GetUserPrincipalName()}
	}
	return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: id}
}

// namespaceOf returns the namespace of an assignment at
// CLUSTER/namespaces/NS, "" for one at the cluster or above.
func namespaceOf(scope, clusterID string) string {
	rest, ok := strings.CutPrefix(strings.ToLower(scope), strings.ToLower(strings.TrimSuffix(clusterID, "/"))+"/namespaces/")
	if !ok {
		return ""
	}
	// Namespace names are lower case; keep the scope's own spelling.
	return scope[len(scope)-len(rest):][:len(strings.SplitN(rest, "/", 2)[0])]
}

// dataPrefix starts the Kubernetes data actions of Azure RBAC.
const dataPrefix = "microsoft.containerservice/managedclusters/"

// knownGroups are API groups without a dot that a data action may name.
var knownGroups = map[string]bool{"apps": true, "batch": true, "autoscaling": true, "policy": true, "extensions": true}

// dataRules maps the data actions of permission blocks to policy rules,
// and returns the notDataActions it could not subtract.
func dataRules(perms []*secureauditv1.AzureRolePermission) ([]*secureauditv1.PolicyRule, []string) {
	var rules []*secureauditv1.PolicyRule
	var excluded []string
	for _, p := range perms {
		for _, d := range p.GetDataActions() {
			if r := dataRule(d); r != nil {
				rules = append(rules, r)
			}
		}
		excluded = append(excluded, p.GetNotDataActions()...)
	}
	return rules, excluded
}

// dataRule maps one data action pattern to a policy rule, nil when it is
// not a Kubernetes data action.
func dataRule(action string) *secureauditv1.PolicyRule {
	low := strings.ToLower(action)
	if low == "*" || low == "microsoft.containerservice/*" || low == "microsoft.containerservice/managedclusters/*" {
		return &secureauditv1.PolicyRule{Verbs: []string{all}, ApiGroups: []string{all}, Resources: []string{all}}
	}
	rest, ok := strings.CutPrefix(low, dataPrefix)
	if !ok || rest == "" {
		return nil
	}
	seg := strings.Split(rest, "/")
	last := seg[len(seg)-1]
	var verbs []string
	path := seg[:len(seg)-1]
	switch last {
	case "read":
		verbs = []string{"get", "list", "watch"}
	case "write":
		verbs = []string{"create", "update", "patch"}
	case "delete":
		verbs = []string{"delete", "deletecollection"}
	case "*":
		verbs = []string{all}
	case "action":
		if len(seg) < 3 {
			return nil
		}
		name := seg[len(seg)-2]
		switch name {
		case "exec", "attach", "portforward", "proxy":
			verbs = []string{"create", "get"}
			path = seg[:len(seg)-1] // the action names a subresource
		default:
			verbs = []string{name}
			path = seg[:len(seg)-2]
		}
	default:
		return nil
	}
	group, resource := "", all
	switch len(path) {
	case 0:
		group = all
	case 1:
		if path[0] == all {
			group = all
		}
		resource = path[0]
	case 2:
		if strings.Contains(path[0], ".") || knownGroups[path[0]] || path[0] == all {
			group, resource = path[0], path[1]
		} else {
			resource = path[0] + "/" + path[1]
		}
	default:
		group, resource = path[0], strings.Join(path[1:], "/")
	}
	resources := []string{resource}
	if last == "*" && group == "" {
		// A data action's '*' covers the resource's subresources too, which
		// an RBAC resource does not: list the ones that matter.
		for _, sub := range subresources[resource] {
			resources = append(resources, resource+"/"+sub)
		}
	}
	return &secureauditv1.PolicyRule{Verbs: verbs, ApiGroups: []string{group}, Resources: resources}
}

// subresources are the core subresources a RESOURCE/* data action covers.
var subresources = map[string][]string{
	"pods":            {"attach", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy", "status"},
	"serviceaccounts": {"token"},
	"nodes":           {"proxy", "status"},
	"services":        {"proxy", "status"},
}

// azureString renders an Azure grant's binding; false for a Kubernetes one.
func azureString(b Binding) (string, bool) {
	switch b.Kind {
	case secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP:
		return "AKS admin group " + b.Name + " -> " + b.Role, true
	case secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT:
		s := "Azure role assignment " + b.Name
		if b.Eligible {
			s = "eligible Azure role assignment (PIM, activation needed) " + b.Name
		}
		if b.Namespace != "" {
			s += " (namespace " + b.Namespace + ")"
		}
		return s + " -> Azure role " + b.Role, true
	}
	return "", false
}

// NewWithAzure is New with the grants through Azure added beside the
// snapshot's bindings: an admin group or cluster-wide assignment counts as
// a ClusterRoleBinding would, a namespace-scoped assignment as a
// RoleBinding of its namespace.
func NewWithAzure(s *snapshot.Snapshot, grants []AzureGrant) *Engine {
	e := New(s)
	for _, g := range grants {
		b := &binding{ref: g.Binding, subjects: []*secureauditv1.Subject{g.Subject}, rules: &ruleSet{id: e.nsets, rules: g.Rules}}
		e.nsets++
		if g.Binding.Namespace == "" {
			e.cluster = append(e.cluster, b)
		} else {
			e.byNS[g.Binding.Namespace] = append(e.byNS[g.Binding.Namespace], b)
		}
		e.index(b, g.Binding.Namespace)
	}
	return e
}
