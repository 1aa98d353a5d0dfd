package access

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Everyone is the principal ID ARM gives a deny assignment's Everyone
// (principal type SystemDefined).
const Everyone = "00000000-0000-0000-0000-000000000000"

// Operations behind the routes a deny assignment can block.
var routeOperations = map[secureauditv1.AzureRoute]string{
	secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL:      "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
	secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL:       "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
	secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND:           "Microsoft.ContainerService/managedClusters/runCommand/action",
	secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE:         "Microsoft.ContainerService/managedClusters/write",
	secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE: "Microsoft.Authorization/roleAssignments/write",
}

// WithoutDenied returns the directory chunks with the Azure deny
// assignments they carry applied to their role assignments (active and
// eligible alike): a route a deny assignment blocks is taken out of the
// assignment's routes, denied data actions are subtracted from its
// permissions as notDataActions (so the grants, who-can, can-i, the access
// review, the AKS rules and the escalation paths built from the chunks no
// longer count them), and an assignment left without a route is dropped.
// Chunks without a change are returned as they are; the input is not
// modified. Without deny assignments or a cluster, dir is returned.
//
// A deny assignment applies to an assignment's principal when it names
// Everyone, the principal or a group the principal is in (transitively,
// through the directory's groups) and excludes neither the principal nor
// such a group. For a group's assignment it applies only when it applies
// to every member: a deny assignment that excludes one of the group's
// (transitive) members, or names some members but not the group, leaves
// the group's grant in place; the members it blocks are then still
// reported through the group (over-reported, never missed).
//
// Scopes: a deny assignment applies at its scope and, unless
// doesNotApplyToChildScopes, below it. listClusterAdminCredential,
// listClusterUserCredential, runCommand and managedClusters/write are
// operations on the cluster; roleAssignments/write is blocked only where
// it is denied at the cluster and at the assignment's own scope (else the
// holder can still write at one of them). Data actions are checked where
// Azure RBAC for Kubernetes checks them: at the namespace of a
// namespace-scoped assignment; for one at the cluster or above, only a
// deny assignment applying to the cluster and all its namespaces is
// subtracted (one at a single namespace, or at the cluster alone, is not,
// as one RBAC rule set cannot say "everywhere but").
func WithoutDenied(dir []*secureauditv1.DirectoryChunk) []*secureauditv1.DirectoryChunk {
	var cluster *secureauditv1.AksCluster
	var denies []*secureauditv1.AzureDenyAssignment
	parents := map[string][]string{} // member ID -> the groups it is a direct member of
	members := map[string][]string{} // group ID -> its direct members
	for _, c := range dir {
		if cluster == nil {
			cluster = c.GetAksCluster()
		}
		for _, x := range c.GetDenyAssignments() {
			// Object IDs compared in lower case, lowered once.
			x = proto.CloneOf(x)
			x.Scope = strings.ToLower(strings.TrimSuffix(x.GetScope(), "/"))
			for _, ids := range [][]string{x.PrincipalIds, x.ExcludePrincipalIds} {
				for i, id := range ids {
					ids[i] = strings.ToLower(id)
				}
			}
			denies = append(denies, x)
		}
		for _, g := range c.GetGroups() {
			gid := strings.ToLower(g.GetId())
			for _, m := range g.GetMemberIds() {
				m = strings.ToLower(m)
				parents[m] = append(parents[m], gid)
				members[gid] = append(members[gid], m)
			}
		}
	}
	if cluster == nil || len(denies) == 0 {
		return dir
	}
	d := &denial{cluster: cluster, denies: denies, parents: parents, members: members,
		excluded: map[*secureauditv1.AzureDenyAssignment]map[string]bool{}, reach: map[string]map[string]bool{}, applying: map[string][]*secureauditv1.AzureDenyAssignment{}, subtracted: map[string]subtraction{}}
	for _, x := range denies {
		// Everyone a deny assignment excludes: the excluded principals and
		// every transitive member of an excluded group.
		ex := map[string]bool{}
		for _, id := range x.GetExcludePrincipalIds() {
			for m := range d.closure(id, members) {
				ex[m] = true
			}
		}
		d.excluded[x] = ex
	}
	out := make([]*secureauditv1.DirectoryChunk, len(dir))
	for i, c := range dir {
		out[i] = c
		var kept []*secureauditv1.AzureRoleAssignment
		changed := false
		for _, a := range c.GetRoleAssignments() {
			e := d.apply(a)
			if e != a {
				changed = true
			}
			if e != nil {
				kept = append(kept, e)
			}
		}
		if changed {
			out[i] = withAssignments(c, kept)
		}
	}
	return out
}

// withAssignments is a copy of a chunk that shares every field but its
// role assignments.
func withAssignments(c *secureauditv1.DirectoryChunk, assignments []*secureauditv1.AzureRoleAssignment) *secureauditv1.DirectoryChunk {
	n := &secureauditv1.DirectoryChunk{}
	src, dst := c.ProtoReflect(), n.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != "role_assignments" {
			dst.Set(fd, v)
		}
		return true
	})
	n.RoleAssignments = assignments
	return n
}

// denial applies deny assignments to role assignments.
type denial struct {
	cluster *secureauditv1.AksCluster
	denies  []*secureauditv1.AzureDenyAssignment
	parents map[string][]string
	members map[string][]string
	// excluded holds, per deny assignment, its excluded principals and
	// their transitive members; reach, per group, its transitive members
	// (computed once).
	excluded map[*secureauditv1.AzureDenyAssignment]map[string]bool
	reach    map[string]map[string]bool
	// applying caches the deny assignments that apply, by principal.
	applying map[string][]*secureauditv1.AzureDenyAssignment
	// subtracted caches what denied data actions leave of a role's
	// permissions, by the permissions' and the denied patterns' text:
	// assignments of one role share it.
	subtracted map[string]subtraction
}

// subtraction is a role's permissions less denied data actions, and
// whether they still allow any Kubernetes data action.
type subtraction struct {
	perms   []*secureauditv1.AzureRolePermission
	blocked bool
}

// apply returns the assignment as the deny assignments leave it: a itself
// when none blocks anything of it, nil when they block every route, else a
// copy with the routes left and the denied data actions subtracted.
func (d *denial) apply(a *secureauditv1.AzureRoleAssignment) *secureauditv1.AzureRoleAssignment {
	p := strings.ToLower(a.GetPrincipalId())
	applying, ok := d.applying[p]
	if !ok {
		self := d.closure(p, d.parents) // p and every group it is in
		for _, x := range d.denies {
			if d.appliesTo(x, p, self) {
				applying = append(applying, x)
			}
		}
		d.applying[p] = applying
	}
	if len(applying) == 0 {
		return a
	}
	clusterID := strings.ToLower(strings.TrimSuffix(d.cluster.GetId(), "/"))
	scope := strings.ToLower(strings.TrimSuffix(a.GetScope(), "/"))
	ns := namespaceOf(a.GetScope(), clusterID)
	var routes []secureauditv1.AzureRoute
	var perms []*secureauditv1.AzureRolePermission
	changed := false
	for _, r := range a.GetRoutes() {
		blocked := false
		switch r {
		case secureauditv1.AzureRoute_AZURE_ROUTE_DATA_ACTIONS:
			target := clusterID
			if ns != "" {
				target = scope
			}
			var denied []string
			for _, x := range applying {
				if !covers(x, target) || (ns == "" && x.GetDoesNotApplyToChildScopes()) {
					continue
				}
				denied = append(denied, deniedData(x)...)
			}
			if len(denied) == 0 {
				break
			}
			sub := d.subtract(a.GetPermissions(), denied)
			perms, blocked, changed = sub.perms, sub.blocked, true
		case secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE:
			op := routeOperations[r]
			atCluster := slices.ContainsFunc(applying, func(x *secureauditv1.AzureDenyAssignment) bool { return covers(x, clusterID) && denies(x, op) })
			atScope := slices.ContainsFunc(applying, func(x *secureauditv1.AzureDenyAssignment) bool { return covers(x, scope) && denies(x, op) })
			blocked = atCluster && atScope
		default:
			op, ok := routeOperations[r]
			blocked = ok && slices.ContainsFunc(applying, func(x *secureauditv1.AzureDenyAssignment) bool { return covers(x, clusterID) && denies(x, op) })
		}
		if blocked {
			changed = true
			continue
		}
		routes = append(routes, r)
	}
	switch {
	case !changed:
		return a
	case len(routes) == 0:
		return nil
	}
	e := proto.CloneOf(a)
	e.Routes = routes
	if perms != nil {
		e.Permissions = perms
	}
	return e
}

// appliesTo reports whether deny assignment x applies to principal p
// (self: p and every group it is in) and, for a group, to every one of
// its transitive members.
func (d *denial) appliesTo(x *secureauditv1.AzureDenyAssignment, p string, self map[string]bool) bool {
	named := func(ids []string, in map[string]bool) bool {
		return slices.ContainsFunc(ids, func(id string) bool { return in[id] })
	}
	if !slices.Contains(x.GetPrincipalIds(), Everyone) && !named(x.GetPrincipalIds(), self) {
		return false
	}
	if named(x.GetExcludePrincipalIds(), self) {
		return false
	}
	if len(x.GetExcludePrincipalIds()) == 0 || len(d.members[p]) == 0 {
		return true
	}
	// A group: no member may escape it through an exclusion.
	reach, ok := d.reach[p]
	if !ok {
		reach = d.closure(p, d.members)
		d.reach[p] = reach
	}
	ex := d.excluded[x]
	for m := range reach {
		if m != p && ex[m] {
			return false
		}
	}
	return true
}

// closure is id and everything reachable from it through edges
// (parents: the groups it is in; members: what a group holds).
func (d *denial) closure(id string, edges map[string][]string) map[string]bool {
	seen := map[string]bool{id: true}
	stack := []string{id}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, next := range edges[n] {
			if !seen[next] {
				seen[next] = true
				stack = append(stack, next)
			}
		}
	}
	return seen
}

// covers reports whether deny assignment x applies at the ARM scope
// target: at its own scope, and below it unless doesNotApplyToChildScopes.
// Both scopes are in lower case without a trailing slash.
func covers(x *secureauditv1.AzureDenyAssignment, target string) bool {
	s, t := x.GetScope(), target
	if s == t {
		return true
	}
	below := strings.HasPrefix(t, s+"/") || (strings.HasPrefix(s, "/providers/microsoft.management/managementgroups/") && !strings.HasPrefix(t, "/providers/"))
	return below && !x.GetDoesNotApplyToChildScopes()
}

// denies reports whether one of x's permission blocks denies the action
// op: one of its actions matches it and none of its notActions does.
func denies(x *secureauditv1.AzureDenyAssignment, op string) bool {
	return slices.ContainsFunc(x.GetPermissions(), func(p *secureauditv1.AzureRolePermission) bool {
		return slices.ContainsFunc(p.GetActions(), func(a string) bool { return azureMatch(a, op) }) &&
			!slices.ContainsFunc(p.GetNotActions(), func(n string) bool { return azureMatch(n, op) })
	})
}

// deniedData returns the data action patterns x denies: a block's data
// actions, or, for a block with notDataActions, the built-in data
// operations its data actions match and its notDataActions do not.
func deniedData(x *secureauditv1.AzureDenyAssignment) []string {
	var out []string
	for _, p := range x.GetPermissions() {
		if len(p.GetNotDataActions()) == 0 {
			out = append(out, p.GetDataActions()...)
			continue
		}
		for _, op := range dataOperations() {
			if slices.ContainsFunc(p.GetDataActions(), func(a string) bool { return azureMatch(a, op) }) &&
				!slices.ContainsFunc(p.GetNotDataActions(), func(n string) bool { return azureMatch(n, op) }) {
				out = append(out, op)
			}
		}
	}
	return out
}

// subtract returns copies of perms with the denied patterns added to each
// block's notDataActions (ARM's deny comes before any allow, so a denied
// data action is as if no block allowed it), and whether they then allow
// no Kubernetes data action; cached by content.
func (d *denial) subtract(perms []*secureauditv1.AzureRolePermission, denied []string) subtraction {
	slices.Sort(denied)
	denied = slices.Compact(denied)
	var key strings.Builder
	for _, p := range perms {
		for _, ops := range [][]string{p.GetActions(), p.GetNotActions(), p.GetDataActions(), p.GetNotDataActions()} {
			key.WriteString(strings.Join(ops, "\x01"))
			key.WriteByte(0)
		}
		key.WriteByte(0)
	}
	key.WriteString(strings.Join(denied, "\x01"))
	if s, ok := d.subtracted[key.String()]; ok {
		return s
	}
	out := make([]*secureauditv1.AzureRolePermission, len(perms))
	for i, p := range perms {
		c := proto.CloneOf(p)
		c.NotDataActions = append(c.NotDataActions, denied...)
		out[i] = c
	}
	rules, _ := dataRules(out)
	s := subtraction{perms: out, blocked: len(rules) == 0}
	d.subtracted[key.String()] = s
	return s
}
