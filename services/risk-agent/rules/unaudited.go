package rules

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// maxScopeNamespace is the longest namespace a finding's scope and
// references hold; namespaces of objects the API server stored are DNS
// labels, so only a hand-written file can hold a longer one.
const maxScopeNamespace = 63

// unaudited reports each object the rbac-agent left out of the snapshot as
// too large to audit (RBAC-050): the API server accepted it, so what it
// grants is unknown to every other rule, and the reviewer must read it.
func unaudited(s *snapshot.Snapshot) []*draft {
	objs, total := s.Unaudited()
	var out []*draft
	for i, o := range objs {
		kind, ns, name := o.GetKind(), o.GetNamespace(), o.GetName()
		if len(ns) > maxScopeNamespace {
			ns = ""
		}
		d := &draft{rule: ruleByID(TooLarge), ns: ns, object: kind + "/" + o.GetNamespace() + "/" + name}
		if name != "" {
			switch kind {
			case "ClusterRole":
				d.role = &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: name}
			case "Role":
				d.role = &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: name, Namespace: ns}
			case "ClusterRoleBinding":
				d.binding = &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: name}
			case "RoleBinding":
				d.binding = &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: name, Namespace: ns}
			}
		}
		where := kind + " " + name
		get := "kubectl get " + strings.ToLower(kind) + " " + quote(name)
		if o.GetNamespace() != "" {
			where = kind + " " + o.GetNamespace() + "/" + name
			get += " -n " + quote(o.GetNamespace())
		}
		d.detail = "Left out: " + where + " (" + o.GetReason() + ")."
		if i == len(objs)-1 && int(total) > len(objs) {
			d.detail += fmt.Sprintf(" %d more objects were left out and are not named here.", int(total)-len(objs))
		}
		d.fix = get + " -o yaml"
		d.ladder = newLadder(d.rule.Severity, "left out of the audit, so nothing it grants was judged")
		out = append(out, d)
	}
	return out
}
