// Package review lists who holds access, for the access review: every user
// and group that a RoleBinding or ClusterRoleBinding names, outside the
// platform-managed grants, and every user and group the directory's answer
// shows reaching an AKS cluster through Azure (its admin groups, role
// assignments that list credentials, run commands or grant Kubernetes
// permissions through Azure RBAC, with the route spelled out), with the
// bindings that give it access and, where
// the directory answered, the people behind it. The report-agent turns the
// list into review items without seeing any RBAC rule; the orchestrator
// carries it from the assessment (AssessSummary.access_review) into the
// report.
//
// It lives in the risk-agent beside the two things it depends on, so that
// neither is decided twice: which grants are platform-managed (the one
// decision, rules.Analysis.ManagedGrants, from the bootstrap policy and the
// catalogued AKS add-ons) and the directory (the one index, the snapshot's
// UserByID, UserByUPN and GroupByID).
package review

import (
	"sort"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// MaxSubjects bounds the list, as the contract does.
const MaxSubjects = 10000

// maxGrants, maxMembers and maxOwners bound each subject, as the contract does.
const (
	maxGrants  = 1000
	maxMembers = 5000
	maxOwners  = 1000
)

// Subjects builds the review list from the snapshot's bindings, leaving out
// the platform-managed grants (managed, the risk-agent's one decision), and
// from the routes into an AKS cluster through Azure that the directory's
// chunks (dir) show (admin groups, role assignments with their routes), and
// resolves users and groups through the snapshot's directory, when it has
// one. It is pure and deterministic: subjects sorted by kind and name,
// grants by binding. It reports whether the list was truncated at
// MaxSubjects.
func Subjects(snap *snapshot.Snapshot, dir []*secureauditv1.DirectoryChunk, managed []*secureauditv1.ManagedGrant) ([]*secureauditv1.ReviewSubject, bool) {
	platform := map[string]bool{}
	for _, m := range managed {
		platform[managedKey(m.GetBinding(), m.GetSubject().GetKind(), m.GetSubject().GetNamespace(), m.GetSubject().GetName())] = true
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
	for _, b := range snap.RoleBindings() {
		ns := b.GetMeta().GetNamespace()
		grant := &secureauditv1.AccessGrant{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: b.GetMeta().GetName(), Namespace: ns},
			Role:    roleRef(snap, b.GetRoleRef(), ns),
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: ns},
		}
		for _, sub := range b.GetSubjects() {
			add(sub, grant)
		}
	}
	for _, b := range snap.ClusterRoleBindings() {
		grant := &secureauditv1.AccessGrant{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: b.GetMeta().GetName()},
			Role:    roleRef(snap, b.GetRoleRef(), ""),
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		}
		for _, sub := range b.GetSubjects() {
			add(sub, grant)
		}
	}
	// The routes through Azure, from the directory's answer (an AKS
	// cluster, its admin groups and the role assignments reaching it).
	for _, g := range azureAccess(snap, dir) {
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
		resolve(snap, s)
		out = append(out, s)
	}
	return out, truncated
}

// managedKey identifies a (binding, subject) pair.
func managedKey(b *secureauditv1.BindingRef, kind secureauditv1.SubjectKind, ns, name string) string {
	return b.GetKind().String() + "/" + b.GetNamespace() + "/" + b.GetName() + "\x00" + kind.String() + "/" + ns + "/" + name
}

// roleRef names a binding's role, marked missing when the snapshot does not
// hold it.
func roleRef(snap *snapshot.Snapshot, r *secureauditv1.RoleRef, namespace string) *secureauditv1.FindingRole {
	role := &secureauditv1.FindingRole{Kind: r.GetKind(), Name: r.GetName()}
	if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		role.Namespace = namespace
		_, ok := snap.Role(namespace, r.GetName())
		role.Missing = !ok
	} else {
		_, ok := snap.ClusterRole(r.GetName())
		role.Missing = !ok
	}
	return role
}

func grantKey(g *secureauditv1.AccessGrant) string {
	return g.GetBinding().GetNamespace() + "/" + g.GetBinding().GetKind().String() + "/" + g.GetBinding().GetName()
}

// resolve fills in what the directory says about the subject: a user's own
// record (by UPN, else by object ID), a group's members and owners.
func resolve(snap *snapshot.Snapshot, s *secureauditv1.ReviewSubject) {
	name := s.GetSubject().GetName()
	switch s.GetSubject().GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		u, ok := snap.UserByUPN(name)
		if !ok {
			u, ok = snap.UserByID(name)
		}
		if !ok {
			return
		}
		s.Resolved = true
		s.Person = person(u)
		s.Subject.DisplayName = truncate(u.GetDisplayName(), 256)
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		g, ok := snap.GroupByID(name)
		if !ok {
			return
		}
		s.Resolved = true
		s.Subject.DisplayName = truncate(g.GetDisplayName(), 256)
		s.Description = truncate(g.GetDescription(), 1024)
		s.Members = members(snap, g, maxMembers)
		markActivated(snap, g, s.Members)
		s.Members = append(s.Members, eligiblePeople(snap, g.GetMemberIds(), g.GetEligibleMemberIds(), maxMembers-len(s.Members))...)
		s.Owners = people(snap, g.GetOwnerIds(), maxOwners)
		s.Owners = append(s.Owners, eligiblePeople(snap, g.GetOwnerIds(), g.GetEligibleOwnerIds(), maxOwners-len(s.Owners))...)
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

// members lists everyone a group's binding reaches: its users and service
// principals, and those of the groups nested in it at any depth (breadth
// first, each group once, so each member is listed once with the shortest
// chain of nested groups it was reached through), and the member IDs the
// directory snapshot does not hold, marked unresolved, so that the count a
// reviewer signs is never short. Direct members first, then by chain; each
// part sorted by UPN or name. At most limit.
func members(snap *snapshot.Snapshot, g *secureauditv1.DirectoryGroup, limit int) []*secureauditv1.Person {
	type level struct {
		group *secureauditv1.DirectoryGroup
		via   string
	}
	seenGroup := map[string]bool{strings.ToLower(g.GetId()): true}
	seen := map[string]bool{}
	var out []*secureauditv1.Person
	queue := []level{{group: g}}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		var found []*secureauditv1.Person
		for _, id := range cur.group.GetMemberIds() {
			key := strings.ToLower(id)
			if nested, ok := snap.GroupByID(id); ok {
				if !seenGroup[key] {
					seenGroup[key] = true
					via := nested.GetDisplayName()
					if via == "" {
						via = nested.GetId()
					}
					if cur.via != "" {
						via = cur.via + " > " + via
					}
					queue = append(queue, level{group: nested, via: via})
				}
				continue
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			var p *secureauditv1.Person
			if u, ok := snap.UserByID(id); ok {
				p = person(u)
			} else if sp, ok := snap.ServicePrincipalByID(id); ok {
				p = &secureauditv1.Person{DisplayName: truncate(sp.GetDisplayName(), 256), ServicePrincipal: true}
				if p.DisplayName == "" {
					p.DisplayName = truncate(sp.GetId(), 256)
				}
			} else {
				p = &secureauditv1.Person{DisplayName: truncate(id, 256), Unresolved: true}
			}
			p.ViaGroup = truncate(cur.via, 1024)
			found = append(found, p)
		}
		sort.SliceStable(found, func(i, j int) bool { return personOrder(found[i]) < personOrder(found[j]) })
		out = append(out, found...)
	}
	if len(out) > limit {
		out = out[:max(limit, 0)]
	}
	return out
}

// personOrder sorts people by UPN, then service principals and unresolved
// IDs by name.
func personOrder(p *secureauditv1.Person) string {
	switch {
	case p.GetUnresolved():
		return "2" + p.GetDisplayName()
	case p.GetServicePrincipal():
		return "1" + strings.ToLower(p.GetDisplayName())
	}
	return "0" + p.GetUserPrincipalName()
}

// people lists the users among ids, sorted by UPN; ids that are not users
// (nested groups, service principals) are left out.
func people(snap *snapshot.Snapshot, ids []string, limit int) []*secureauditv1.Person {
	var out []*secureauditv1.Person
	for _, id := range ids {
		if u, ok := snap.UserByID(id); ok {
			out = append(out, person(u))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetUserPrincipalName() < out[j].GetUserPrincipalName() })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// markActivated marks the members whose membership of g is a PIM for
// Groups activation, with the activation's end when known.
func markActivated(snap *snapshot.Snapshot, g *secureauditv1.DirectoryGroup, members []*secureauditv1.Person) {
	byUPN := map[string]string{} // UPN -> object ID of the activated members
	for _, id := range g.GetActivatedMemberIds() {
		if u, ok := snap.UserByID(id); ok {
			byUPN[u.GetUserPrincipalName()] = strings.ToLower(id)
		}
	}
	for _, p := range members {
		id, ok := byUPN[p.GetUserPrincipalName()]
		if !ok {
			continue
		}
		p.Activated = true
		for k, end := range g.GetActivationEnds() {
			if strings.EqualFold(k, id) {
				p.ActivatedUntil = end
			}
		}
	}
}

// eligiblePeople lists a group's eligible members (or owners) under PIM
// for Groups, the eligible IDs, that are users and not standing ones,
// marked eligible, sorted by UPN, at most limit.
func eligiblePeople(snap *snapshot.Snapshot, standingIDs, eligibleIDs []string, limit int) []*secureauditv1.Person {
	standing := map[string]bool{}
	for _, id := range standingIDs {
		standing[strings.ToLower(id)] = true
	}
	var ids []string
	for _, id := range eligibleIDs {
		if !standing[strings.ToLower(id)] {
			ids = append(ids, id)
		}
	}
	out := people(snap, ids, max(limit, 0))
	for _, p := range out {
		p.Eligible = true
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
