package reasoning

import (
	"fmt"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// Subject is a user or group bound directly to a role, up for access review.
type Subject struct {
	// ID is the short ID the prompt uses, such as s3; it is the only way the
	// model can refer to the subject.
	ID  string
	Ref *secureauditv1.SubjectRef
	// Roles lists the grants as "ClusterRole/edit in namespace payments" or
	// "ClusterRole/cluster-admin cluster-wide".
	Roles []string
}

// maxRoles bounds the grants listed per subject.
const maxRoles = 256

// maxGrantLen is the contract's bound on one role of an access review.
const maxGrantLen = 600

// Subjects lists the users and groups that bindings name, except
// Kubernetes' own system: identities, sorted by kind and name, with their
// grants. Display names come from the directory when it resolved them.
func Subjects(snap *snapshot.Snapshot) []Subject {
	type entry struct {
		ref   *secureauditv1.SubjectRef
		roles []string
	}
	byKey := map[string]*entry{}
	add := func(sub *secureauditv1.Subject, grant string) {
		kind := sub.GetKind()
		if kind != secureauditv1.SubjectKind_SUBJECT_KIND_USER && kind != secureauditv1.SubjectKind_SUBJECT_KIND_GROUP {
			return
		}
		if strings.HasPrefix(sub.GetName(), "system:") {
			return
		}
		key := kind.String() + "/" + sub.GetName()
		e, ok := byKey[key]
		if !ok {
			e = &entry{ref: &secureauditv1.SubjectRef{Kind: kind, Name: sub.GetName(), DisplayName: displayName(snap, kind, sub.GetName())}}
			byKey[key] = e
		}
		grant = bounded(grant, maxGrantLen)
		if len(e.roles) < maxRoles && !slices.Contains(e.roles, grant) {
			e.roles = append(e.roles, grant)
		}
	}
	for _, b := range snap.RoleBindings() {
		ref := b.GetRoleRef()
		grant := fmt.Sprintf("%s/%s in namespace %s", roleKindName(ref.GetKind()), ref.GetName(), b.GetMeta().GetNamespace())
		for _, sub := range b.GetSubjects() {
			add(sub, grant)
		}
	}
	for _, b := range snap.ClusterRoleBindings() {
		grant := fmt.Sprintf("ClusterRole/%s cluster-wide", b.GetRoleRef().GetName())
		for _, sub := range b.GetSubjects() {
			add(sub, grant)
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Subject, 0, len(keys))
	for i, k := range keys {
		e := byKey[k]
		slices.Sort(e.roles)
		out = append(out, Subject{ID: fmt.Sprintf("s%d", i+1), Ref: e.ref, Roles: e.roles})
	}
	return out
}

func roleKindName(k secureauditv1.RoleKind) string {
	if k == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "Role"
	}
	return "ClusterRole"
}

func displayName(snap *snapshot.Snapshot, kind secureauditv1.SubjectKind, name string) string {
	var dn string
	switch kind {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		if u, ok := snap.UserByUPN(name); ok {
			dn = u.GetDisplayName()
		} else if u, ok := snap.UserByID(name); ok {
			dn = u.GetDisplayName()
		}
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		if g, ok := snap.GroupByID(name); ok {
			dn = g.GetDisplayName()
		}
	}
	return dn
}
