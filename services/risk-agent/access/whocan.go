package access

import (
	"cmp"
	"slices"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Match is a subject that a binding allows to make a request. A
// ServiceAccount subject's namespace is filled in from its RoleBinding when
// the binding left it empty.
type Match struct {
	Subject *secureauditv1.Subject
	Binding Binding
}

// WhoCan returns every subject bound to a role that allows the request, with
// the binding, sorted by subject kind, name and namespace, then binding.
// Members of the groups among them (system:authenticated is everyone
// authenticated) are allowed too, and so is system:masters, which RBAC does
// not govern: Allowed decides for one identity.
func (e *Engine) WhoCan(a Attributes) []Match {
	// Each distinct role is evaluated once per query: 0 unknown, 1 allows,
	// 2 does not.
	memo := make([]uint8, e.nsets)
	allows := func(rs *ruleSet) bool {
		if rs == nil {
			return false
		}
		if memo[rs.id] == 0 {
			memo[rs.id] = 2
			for _, r := range rs.rules {
				if RuleAllows(r, a) {
					memo[rs.id] = 1
					break
				}
			}
		}
		return memo[rs.id] == 1
	}
	var out []Match
	collect := func(bs []*binding) {
		for _, b := range bs {
			if !allows(b.rules) {
				continue
			}
			for _, s := range b.subjects {
				if s.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT && s.GetNamespace() == "" {
					if b.ref.Namespace == "" {
						continue // a ServiceAccount without a namespace binds nobody
					}
					s = &secureauditv1.Subject{Kind: s.GetKind(), Name: s.GetName(), Namespace: b.ref.Namespace}
				}
				out = append(out, Match{Subject: s, Binding: b.ref})
			}
		}
	}
	collect(e.cluster)
	if a.Namespace != "" {
		collect(e.byNS[a.Namespace])
	}
	slices.SortFunc(out, func(x, y Match) int {
		return cmp.Or(
			cmp.Compare(x.Subject.GetKind(), y.Subject.GetKind()),
			cmp.Compare(x.Subject.GetName(), y.Subject.GetName()),
			cmp.Compare(x.Subject.GetNamespace(), y.Subject.GetNamespace()),
			compareBindings(x.Binding, y.Binding),
		)
	})
	return slices.CompactFunc(out, func(x, y Match) bool {
		return x.Binding == y.Binding && x.Subject.GetKind() == y.Subject.GetKind() &&
			x.Subject.GetName() == y.Subject.GetName() && x.Subject.GetNamespace() == y.Subject.GetNamespace()
	})
}
