// Package review lists who holds access for the access review: every user
// and group that a RoleBinding or ClusterRoleBinding names, outside the
// platform-managed grants, and every user and group the directory's answer
// shows reaching an AKS cluster through Azure (its admin groups, role
// assignments that list credentials, run commands or grant Kubernetes
// permissions through Azure RBAC, with the route spelled out), with the
// grants that give it access and, where the directory answered, the people
// behind it. The orchestrator builds this
// list because it alone holds both the snapshot and the directory; the
// report-agent turns it into review items without seeing any RBAC rule.
//
// Which grants are platform-managed is not decided here: the risk-agent
// decides it once (by recognising the bootstrap policy and the catalogued
// AKS add-ons) and sends the list in AssessSummary.platform_grants.
package review

import (
	"sort"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// MaxSubjects bounds the list, as the Report contract does.
const MaxSubjects = 10000

// maxGrants, maxMembers and maxOwners bound each subject, as the contract does.
const (
	maxGrants  = 1000
	maxMembers = 5000
	maxOwners  = 1000
)

// Subjects builds the review list from the snapshot's bindings, leaving out
// the platform-managed grants (managed, the risk-agent's decision), and,
// when dir is not nil, the directory's answer. It is pure and
// deterministic: subjects sorted by kind and name, grants by binding. It
// reports whether the list was truncated at MaxSubjects.
func Subjects(snapshot []*secureauditv1.SnapshotChunk, dir []*secureauditv1.DirectoryChunk, managed []*secureauditv1.ManagedGrant) ([]*secureauditv1.ReviewSubject, bool) {
	platform := map[string]bool{}
	for _, m := range managed {
		platform[managedKey(m.GetBinding(), m.GetSubject().GetKind(), m.GetSubject().GetNamespace(), m.GetSubject().GetName())] = true
	}
	users := map[string]*secureauditv1.DirectoryUser{}
	byUPN := map[string]*secureauditv1.DirectoryUser{}
	groups := map[string]*secureauditv1.DirectoryGroup{}
	for _, c := range dir {
		for _, u := range c.GetUsers() {
			users[strings.ToLower(u.GetId())] = u
			byUPN[strings.ToLower(u.GetUserPrincipalName())] = u
		}
		for _, g := range c.GetGroups() {
			groups[strings.ToLower(g.GetId())] = g
		}
	}

	subjects := map[string]*secureauditv1.ReviewSubject{}
	add := func(sub *secureauditv1.Subject, grant *secureauditv1.AccessGrant) {
		kind := sub.GetKind()
		if kind != secureauditv1.SubjectKind_SUBJECT_KIND_USER && kind != secureauditv1.SubjectKind_SUBJECT_KIND_GROUP {
			return
		}
		if platform[managedKey(grant.GetBinding(), kind, sub.GetNamespace(), sub.GetName())] {
			return
		}
		key := kind.String() + "/" + sub.GetName()
		s, ok := subjects[key]
		if !ok {
			s = &secureauditv1.ReviewSubject{Subject: &secureauditv1.SubjectRef{Kind: kind, Name: sub.GetName()}}
			subjects[key] = s
		}
		if len(s.Grants) < maxGrants {
			s.Grants = append(s.Grants, grant)
		}
	}
	for _, c := range snapshot {
		for _, b := range c.GetRoleBindings() {
			ns := b.GetMeta().GetNamespace()
			grant := &secureauditv1.AccessGrant{
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: b.GetMeta().GetName(), Namespace: ns},
				Role:    roleRef(b.GetRoleRef(), ns),
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: ns},
			}
			for _, sub := range b.GetSubjects() {
				add(sub, grant)
			}
		}
		for _, b := range c.GetClusterRoleBindings() {
			grant := &secureauditv1.AccessGrant{
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: b.GetMeta().GetName()},
				Role:    roleRef(b.GetRoleRef(), ""),
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
			}
			for _, sub := range b.GetSubjects() {
				add(sub, grant)
			}
		}
	}
	markMissing(snapshot, subjects)
	// The routes through Azure, after markMissing: their roles are Azure's.
	for _, g := range azureAccess(dir, users, groups) {
		add(g.subject, g.grant)
	}

	keys := make([]string, 0, len(subjects))
	for k := range subjects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	truncated := len(keys) > MaxSubjects
	if truncated {
		keys = keys[:MaxSubjects]
	}
	out := make([]*secureauditv1.ReviewSubject, 0, len(keys))
	for _, k := range keys {
		s := subjects[k]
		sort.SliceStable(s.Grants, func(i, j int) bool { return grantKey(s.Grants[i]) < grantKey(s.Grants[j]) })
		if dir != nil {
			resolve(s, users, byUPN, groups)
		}
		out = append(out, s)
	}
	return out, truncated
}

// managedKey identifies a (binding, subject) pair.
func managedKey(b *secureauditv1.BindingRef, kind secureauditv1.SubjectKind, ns, name string) string {
	return b.GetKind().String() + "/" + b.GetNamespace() + "/" + b.GetName() + "\x00" + kind.String() + "/" + ns + "/" + name
}

func roleRef(r *secureauditv1.RoleRef, namespace string) *secureauditv1.FindingRole {
	role := &secureauditv1.FindingRole{Kind: r.GetKind(), Name: r.GetName()}
	if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		role.Namespace = namespace
	}
	return role
}

// markMissing flags grants whose role is not in the snapshot.
func markMissing(snapshot []*secureauditv1.SnapshotChunk, subjects map[string]*secureauditv1.ReviewSubject) {
	roles := map[string]bool{}
	for _, c := range snapshot {
		for _, r := range c.GetRoles() {
			roles["Role/"+r.GetMeta().GetNamespace()+"/"+r.GetMeta().GetName()] = true
		}
		for _, r := range c.GetClusterRoles() {
			roles["ClusterRole//"+r.GetMeta().GetName()] = true
		}
	}
	for _, s := range subjects {
		for _, g := range s.GetGrants() {
			kind := "ClusterRole"
			if g.GetRole().GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
				kind = "Role"
			}
			if !roles[kind+"/"+g.GetRole().GetNamespace()+"/"+g.GetRole().GetName()] {
				g.Role.Missing = true
			}
		}
	}
}

func grantKey(g *secureauditv1.AccessGrant) string {
	return g.GetBinding().GetNamespace() + "/" + g.GetBinding().GetKind().String() + "/" + g.GetBinding().GetName()
}

// resolve fills in what the directory says about the subject: a user's own
// record, a group's members and owners.
func resolve(s *secureauditv1.ReviewSubject, users, byUPN map[string]*secureauditv1.DirectoryUser, groups map[string]*secureauditv1.DirectoryGroup) {
	name := strings.ToLower(s.GetSubject().GetName())
	switch s.GetSubject().GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		u := byUPN[name]
		if u == nil {
			u = users[name]
		}
		if u == nil {
			return
		}
		s.Resolved = true
		s.Person = person(u)
		s.Subject.DisplayName = truncate(u.GetDisplayName(), 256)
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		g := groups[name]
		if g == nil {
			return
		}
		s.Resolved = true
		s.Subject.DisplayName = truncate(g.GetDisplayName(), 256)
		s.Description = truncate(g.GetDescription(), 1024)
		s.Members = people(g.GetMemberIds(), users, maxMembers)
		s.Owners = people(g.GetOwnerIds(), users, maxOwners)
	}
}

func person(u *secureauditv1.DirectoryUser) *secureauditv1.Person {
	return &secureauditv1.Person{
		UserPrincipalName: truncate(u.GetUserPrincipalName(), 1024),
		DisplayName:       truncate(u.GetDisplayName(), 256),
		Guest:             u.GetUserType() == secureauditv1.UserType_USER_TYPE_GUEST,
		Disabled:          !u.GetAccountEnabled(),
	}
}

// people lists the users among ids, sorted by UPN; ids that are not users
// (nested groups, service principals) are left out.
func people(ids []string, users map[string]*secureauditv1.DirectoryUser, limit int) []*secureauditv1.Person {
	var out []*secureauditv1.Person
	for _, id := range ids {
		if u := users[strings.ToLower(id)]; u != nil {
			out = append(out, person(u))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetUserPrincipalName() < out[j].GetUserPrincipalName() })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
