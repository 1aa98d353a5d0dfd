package access

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/discovery"
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
	// Credential is set for a grant of cluster-admin through a credential
	// or run command (listClusterAdminCredential, listClusterUserCredential,
	// runCommand), unset for one through data actions or an admin group.
	Credential bool
}

// Key is the grant key of a grant through Azure: the findings about it
// (AKS-008, AKS-009, an escalation path that starts with it) share it, so
// that the report lists them as one entry. It is the SHA-256 of
// "AKS-008", the binding and the subject, as AKS-008 first keyed its
// findings (their IDs stay stable).
func (g AzureGrant) Key() string {
	sum := sha256.Sum256([]byte("AKS-008\x00" + g.Binding.String() + "\x00" + g.Subject.GetName()))
	return hex.EncodeToString(sum[:8])
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
//     subresource); '*' to everything. notDataActions are subtracted as
//     ARM subtracts them (see dataRules); where RBAC cannot say "all but",
//     the data actions are expanded over the built-in resources and the
//     route says so.
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
			out = append(out, AzureGrant{Binding: cb, Subject: sub, Rules: clusterAdmin, Route: pim(strings.Join(admin, "; ")), Activated: a.GetActivated(), Assignment: a, Credential: true})
		}
		if cluster.GetAzureRbac() && has(secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS) {
			rules, partial := dataRules(a.GetPermissions())
			if len(rules) == 0 {
				continue
			}
			route := routeDataActions
			if len(partial) > 0 {
				route += " (" + strings.Join(partial, "; ") + ": expanded over the built-in resources of Kubernetes " + discovery.BuiltinVersion() + ", custom resources left out)"
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

// AzureSubjects returns a function naming an assignment's principal as
// AzureGrants does (and AKS's Entra authentication does): a group by
// object ID, a user the directory holds by UPN, anyone else by object ID.
func AzureSubjects(dir []*secureauditv1.DirectoryChunk) func(*secureauditv1.AzureRoleAssignment) *secureauditv1.Subject {
	users := map[string]*secureauditv1.DirectoryUser{}
	groups := map[string]bool{}
	for _, c := range dir {
		for _, u := range c.GetUsers() {
			users[strings.ToLower(u.GetId())] = u
		}
		for _, g := range c.GetGroups() {
			groups[strings.ToLower(g.GetId())] = true
		}
	}
	return func(a *secureauditv1.AzureRoleAssignment) *secureauditv1.Subject {
		return azureSubject(a, users, groups)
	}
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

// ScopeName describes an ARM scope relative to the cluster, as routes and
// paths name it: "the cluster", "namespace NS", "resource group RG",
// "subscription ID", "management group ID", else the scope itself.
func ScopeName(scope, clusterID string) string {
	s := strings.ToLower(strings.TrimSuffix(scope, "/"))
	c := strings.ToLower(clusterID)
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	switch {
	case s == c:
		return "the cluster"
	case strings.HasPrefix(s, c+"/namespaces/"):
		return "namespace " + parts[len(parts)-1]
	case strings.Contains(s, "/providers/microsoft.management/managementgroups/"):
		return "management group " + parts[len(parts)-1]
	case len(parts) == 4 && strings.EqualFold(parts[2], "resourceGroups"):
		return "resource group " + parts[3]
	case len(parts) == 2 && strings.EqualFold(parts[0], "subscriptions"):
		return "subscription " + parts[1]
	}
	return scope
}

// ScopeNamespace returns the namespace of a scope CLUSTER/namespaces/NS,
// "" for the cluster or a scope above it.
func ScopeNamespace(scope, clusterID string) string { return namespaceOf(scope, clusterID) }

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
// each block's notDataActions subtracted as ARM subtracts them (a block
// allows an operation when one of its dataActions matches it and none of
// its notDataActions does; blocks add up). A data action that a
// notDataAction covers entirely is dropped. One that a narrower
// notDataAction removes part of (managedClusters/* without
// managedClusters/secrets/*) cannot be one RBAC rule, which has no deny:
// it is expanded over the operations of the built-in resources of
// kube-apiserver discovery.BuiltinVersion (read, write, delete on every
// resource and subresource, and the named actions), the excluded ones
// left out; custom resources are then left out too, and the returned
// notes say so.
func dataRules(perms []*secureauditv1.AzureRolePermission) ([]*secureauditv1.PolicyRule, []string) {
	var rules []*secureauditv1.PolicyRule
	var notes []string
	for _, p := range perms {
		nots := p.GetNotDataActions()
		for _, d := range p.GetDataActions() {
			if slices.ContainsFunc(nots, func(n string) bool { return azureMatch(n, d) }) {
				continue // excluded entirely
			}
			var partial []string
			for _, n := range nots {
				if azureMatch(d, n) {
					partial = append(partial, n)
				}
			}
			if len(partial) == 0 {
				if r := dataRule(d); r != nil {
					rules = append(rules, r)
				}
				continue
			}
			for _, op := range dataOperations() {
				if azureMatch(d, op) && !slices.ContainsFunc(nots, func(n string) bool { return azureMatch(n, op) }) {
					if r := dataRule(op); r != nil {
						rules = append(rules, r)
					}
				}
			}
			notes = append(notes, d+" without "+strings.Join(partial, ", "))
		}
	}
	return rules, notes
}

// dataOperations are the Kubernetes data actions of the built-in
// resources: read, write and delete on each resource and subresource, the
// stream subresources' actions and the named verbs Azure RBAC for
// Kubernetes lists (impersonate, bind, escalate, approve).
var dataOperations = sync.OnceValue(func() []string {
	var out []string
	add := func(path string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, "Microsoft.ContainerService/managedClusters/"+path+"/"+v)
		}
	}
	for _, r := range discovery.Builtin().Resources() {
		if !r.PreferredVersion {
			continue
		}
		path := r.Name
		if r.Group != "" {
			path = r.Group + "/" + r.Name
		}
		add(path, "read", "write", "delete")
		for _, sub := range r.Subresources {
			add(path+"/"+sub, "read", "write", "delete")
			switch sub {
			case "exec", "attach", "portforward", "proxy":
				add(path+"/"+sub, "action")
			}
		}
	}
	add("users", "impersonate/action")
	add("groups", "impersonate/action")
	add("serviceaccounts", "impersonate/action")
	add("rbac.authorization.k8s.io/clusterroles", "bind/action", "escalate/action")
	add("rbac.authorization.k8s.io/roles", "bind/action", "escalate/action")
	add("certificates.k8s.io/signers", "approve/action")
	slices.Sort(out)
	return slices.Compact(out)
})

// azureMatch reports whether an Azure operation pattern matches an
// operation (or a narrower pattern): case-insensitive, '*' matching any
// run of characters, '/' included.
func azureMatch(pattern, op string) bool {
	p, s := strings.ToLower(pattern), strings.ToLower(op)
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

// RemoveCommand is the command that removes one Azure role assignment: a
// standing one is deleted; an eligible one (Privileged Identity
// Management) cannot be, and is removed by an AdminRemove eligibility
// schedule request at its scope, naming its principal and role.
func RemoveCommand(a *secureauditv1.AzureRoleAssignment) string {
	if !a.GetEligible() {
		return "az role assignment delete --ids " + a.GetId()
	}
	return "az rest --method put --url 'https://management.azure.com" + a.GetScope() +
		"/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/<new-guid>?api-version=2020-10-01' " +
		"--body '{\"properties\":{\"principalId\":\"" + a.GetPrincipalId() + "\",\"roleDefinitionId\":\"" +
		cmp.Or(a.GetRoleDefinitionId(), "<role-definition-id of "+a.GetRoleName()+">") + "\",\"requestType\":\"AdminRemove\"}}'"
}
