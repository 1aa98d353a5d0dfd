package identity

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// directory indexes the directory chunks of one assessment, keyed by
// lower-case object ID, UPN or app ID.
type directory struct {
	present     bool
	users       map[string]*secureauditv1.DirectoryUser
	upns        map[string]*secureauditv1.DirectoryUser
	groups      map[string]*secureauditv1.DirectoryGroup
	sps         map[string]*secureauditv1.DirectoryServicePrincipal
	apps        map[string]*secureauditv1.DirectoryServicePrincipal // by app ID
	unresolved  map[string]bool                                     // kind/lower-case name
	assignments map[string][]*secureauditv1.AzureRoleAssignment     // by principal ID
}

func index(chunks []*secureauditv1.DirectoryChunk) *directory {
	d := &directory{
		present:     len(chunks) > 0,
		users:       map[string]*secureauditv1.DirectoryUser{},
		upns:        map[string]*secureauditv1.DirectoryUser{},
		groups:      map[string]*secureauditv1.DirectoryGroup{},
		sps:         map[string]*secureauditv1.DirectoryServicePrincipal{},
		apps:        map[string]*secureauditv1.DirectoryServicePrincipal{},
		unresolved:  map[string]bool{},
		assignments: map[string][]*secureauditv1.AzureRoleAssignment{},
	}
	seen := map[string]bool{}
	for _, c := range chunks {
		for _, u := range c.GetUsers() {
			d.users[lower(u.GetId())] = u
		}
		for _, g := range c.GetGroups() {
			d.groups[lower(g.GetId())] = g
		}
		for _, sp := range c.GetServicePrincipals() {
			d.sps[lower(sp.GetId())] = sp
			d.apps[lower(sp.GetAppId())] = sp
		}
		for _, p := range c.GetUnresolved() {
			d.unresolved[unresolvedKey(p.GetKind(), p.GetName())] = true
		}
		for _, a := range c.GetRoleAssignments() {
			if seen[lower(a.GetId())] {
				continue
			}
			seen[lower(a.GetId())] = true
			k := lower(a.GetPrincipalId())
			d.assignments[k] = append(d.assignments[k], a)
		}
	}
	// UPNs from users in ID order, so a shared UPN resolves the same way.
	ids := make([]string, 0, len(d.users))
	for id := range d.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := d.users[id]
		if _, ok := d.upns[lower(u.GetUserPrincipalName())]; !ok {
			d.upns[lower(u.GetUserPrincipalName())] = u
		}
	}
	for _, as := range d.assignments {
		slices.SortFunc(as, func(a, b *secureauditv1.AzureRoleAssignment) int {
			return cmp.Or(cmp.Compare(a.GetScope(), b.GetScope()), cmp.Compare(a.GetRoleName(), b.GetRoleName()), cmp.Compare(a.GetId(), b.GetId()))
		})
	}
	return d
}

func lower(s string) string { return strings.ToLower(s) }

func unresolvedKey(k secureauditv1.PrincipalKind, name string) string {
	return k.String() + "/" + lower(name)
}

// member is a user or service principal reached through a subject, with the
// chain of groups it was reached through (empty when bound directly).
type member struct {
	user *secureauditv1.DirectoryUser
	sp   *secureauditv1.DirectoryServicePrincipal
	path []*secureauditv1.DirectoryGroup
}

func (m member) id() string {
	if m.user != nil {
		return lower(m.user.GetId())
	}
	return lower(m.sp.GetId())
}

// via says how the member was reached.
func (m member) via() string {
	if len(m.path) == 0 {
		return "bound directly"
	}
	names := make([]string, len(m.path))
	for i, g := range m.path {
		names[i] = groupName(g)
	}
	return "through group " + strings.Join(names, " > ")
}

// reach resolves a binding subject to the people and service principals
// behind it: the user or service principal it names, or every member of the
// group it names through any nesting (breadth first, each group once, so
// each member is reported with its shortest path). Members are sorted by ID.
func (d *directory) reach(sub *secureauditv1.Subject) []member {
	switch sub.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		if u := d.user(sub.GetName()); u != nil {
			return []member{{user: u}}
		}
		if sp, ok := d.sps[lower(sub.GetName())]; ok {
			return []member{{sp: sp}}
		}
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		g, ok := d.groups[lower(sub.GetName())]
		if !ok {
			return nil
		}
		return d.members(g)
	}
	return nil
}

func (d *directory) user(name string) *secureauditv1.DirectoryUser {
	if u, ok := d.users[lower(name)]; ok {
		return u
	}
	return d.upns[lower(name)]
}

// members lists everyone reached through g, with paths starting at g.
func (d *directory) members(g *secureauditv1.DirectoryGroup) []member {
	type item struct {
		g    *secureauditv1.DirectoryGroup
		path []*secureauditv1.DirectoryGroup
	}
	visited := map[string]bool{lower(g.GetId()): true}
	found := map[string]member{}
	queue := []item{{g, []*secureauditv1.DirectoryGroup{g}}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		ids := slices.Clone(it.g.GetMemberIds())
		slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(lower(a), lower(b)) })
		for _, id := range ids {
			k := lower(id)
			if _, ok := found[k]; ok {
				continue
			}
			switch {
			case d.users[k] != nil:
				found[k] = member{user: d.users[k], path: it.path}
			case d.sps[k] != nil:
				found[k] = member{sp: d.sps[k], path: it.path}
			case d.groups[k] != nil && !visited[k]:
				visited[k] = true
				path := append(slices.Clip(it.path), d.groups[k])
				queue = append(queue, item{d.groups[k], path})
			}
		}
	}
	out := make([]member, 0, len(found))
	for _, m := range found {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b member) int { return cmp.Compare(a.id(), b.id()) })
	return out
}

// groups lists g and every group nested in it, g first, then by ID.
func (d *directory) nested(g *secureauditv1.DirectoryGroup) []*secureauditv1.DirectoryGroup {
	visited := map[string]bool{lower(g.GetId()): true}
	out := []*secureauditv1.DirectoryGroup{g}
	for i := 0; i < len(out); i++ {
		for _, id := range out[i].GetMemberIds() {
			k := lower(id)
			if sub, ok := d.groups[k]; ok && !visited[k] {
				visited[k] = true
				out = append(out, sub)
			}
		}
	}
	slices.SortFunc(out[1:], func(a, b *secureauditv1.DirectoryGroup) int { return cmp.Compare(lower(a.GetId()), lower(b.GetId())) })
	return out
}

// owners lists the users and service principals owning g, sorted by ID.
func (d *directory) owners(g *secureauditv1.DirectoryGroup) []member {
	var out []member
	for _, id := range g.GetOwnerIds() {
		if u, ok := d.users[lower(id)]; ok {
			out = append(out, member{user: u})
		} else if sp, ok := d.sps[lower(id)]; ok {
			out = append(out, member{sp: sp})
		}
	}
	slices.SortFunc(out, func(a, b member) int { return cmp.Compare(a.id(), b.id()) })
	return out
}

// maxListed bounds the people a description names.
const maxListed = 40

// person describes a user or service principal for a reader: display name,
// UPN or app ID, and flags.
func person(m member) string {
	if m.sp != nil {
		return fmt.Sprintf("%s (service principal %s, %s)", orID(m.sp.GetDisplayName(), m.sp.GetId()), m.sp.GetAppId(), cmp.Or(m.sp.GetServicePrincipalType(), "unknown type"))
	}
	u := m.user
	var flags []string
	if u.GetUserType() == secureauditv1.UserType_USER_TYPE_GUEST {
		flags = append(flags, "guest")
	}
	if !u.GetAccountEnabled() {
		flags = append(flags, "disabled")
	}
	s := fmt.Sprintf("%s <%s>", orID(u.GetDisplayName(), u.GetId()), u.GetUserPrincipalName())
	if len(flags) > 0 {
		s += " [" + strings.Join(flags, ", ") + "]"
	}
	return s
}

func people(ms []member, withPath bool) string {
	parts := make([]string, 0, min(len(ms), maxListed))
	for i, m := range ms {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(ms)-maxListed))
			break
		}
		p := person(m)
		if withPath && len(m.path) > 1 {
			p += " (" + m.via() + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func groupName(g *secureauditv1.DirectoryGroup) string {
	return orID(g.GetDisplayName(), g.GetId())
}

func orID(name, id string) string {
	if name == "" {
		return id
	}
	return name
}
