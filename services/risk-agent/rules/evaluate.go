package rules

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// bootstrapClusterAdmin are cluster-admin's bootstrap rules, used when a
// snapshot (typically a set of manifests) binds cluster-admin without
// carrying its definition.
var bootstrapClusterAdmin = []*secureauditv1.PolicyRule{
	{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}},
	{Verbs: []string{"*"}, NonResourceUrls: []string{"*"}},
}

// grant is one (binding, subject) pair with the rules it grants.
type grant struct {
	binding    *secureauditv1.BindingRef
	role       *secureauditv1.FindingRole
	subject    *secureauditv1.Subject
	namespace  string // "" for a cluster-wide grant
	rules      []*secureauditv1.PolicyRule
	aggregated bool // the role is an aggregated ClusterRole
}

func (g *grant) namespaced() bool { return g.namespace != "" }

func (g *grant) group() bool {
	return g.subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
}

// Evaluate runs the whole catalogue over s and returns the findings sorted
// by severity, cluster before namespace scope, namespace, rule ID, subject
// and binding.
func Evaluate(s *snapshot.Snapshot) []*secureauditv1.Finding {
	var out []*draft
	for _, g := range grants(s) {
		out = append(out, evaluate(g)...)
	}
	chain(out)
	findings := make([]*secureauditv1.Finding, 0, len(out))
	for _, d := range out {
		findings = append(findings, d.finding(s))
	}
	Sort(findings)
	return findings
}

// grants expands every binding into one grant per subject, with the
// effective rules of its role.
func grants(s *snapshot.Snapshot) []*grant {
	var out []*grant
	for _, b := range s.ClusterRoleBindings() {
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: b.GetMeta().GetName()}
		role, rules, agg := resolve(s, b.GetRoleRef(), "")
		for _, sub := range b.GetSubjects() {
			out = append(out, &grant{binding: ref, role: role, subject: sub, rules: rules, aggregated: agg})
		}
	}
	for _, b := range s.RoleBindings() {
		ns := b.GetMeta().GetNamespace()
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: b.GetMeta().GetName(), Namespace: ns}
		role, rules, agg := resolve(s, b.GetRoleRef(), ns)
		for _, sub := range b.GetSubjects() {
			out = append(out, &grant{binding: ref, role: role, subject: sub, namespace: ns, rules: rules, aggregated: agg})
		}
	}
	return out
}

// resolve finds a binding's role. A missing role is marked missing, except
// the bootstrap ClusterRoles (cluster-admin, admin, edit, view and system:*),
// which a snapshot of manifests often references without defining; of those
// only cluster-admin's rules are known here.
func resolve(s *snapshot.Snapshot, ref *secureauditv1.RoleRef, ns string) (*secureauditv1.FindingRole, []*secureauditv1.PolicyRule, bool) {
	name := ref.GetName()
	if ref.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		role := &secureauditv1.FindingRole{Kind: ref.GetKind(), Name: name, Namespace: ns}
		r, ok := s.Role(ns, name)
		role.Missing = !ok
		return role, r.GetRules(), false
	}
	role := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: name}
	rules, ok := s.EffectiveClusterRoleRules(name)
	if ok {
		cr, _ := s.ClusterRole(name)
		return role, rules, len(cr.GetAggregationSelectors()) > 0
	}
	switch {
	case name == "cluster-admin":
		return role, bootstrapClusterAdmin, false
	case name == "admin", name == "edit", name == "view", strings.HasPrefix(name, "system:"):
		return role, nil, false
	}
	role.Missing = true
	return role, nil, false
}

// draft is a finding before chains and sorting.
type draft struct {
	rule    Rule
	g       *grant
	matched []*secureauditv1.PolicyRule
	ladder  *ladder
	detail  string // appended to the description
	fix     string // the exact command
}

const rbacGroup = "rbac.authorization.k8s.io"

var (
	secretsTargets = []target{{verb: "get", resource: "secrets"}, {verb: "list", resource: "secrets"}, {verb: "watch", resource: "secrets"}}
	podCreate      = []target{{verb: "create", resource: "pods"}}
	execTargets    = []target{
		{verb: "create", resource: "pods/exec"}, {verb: "get", resource: "pods/exec"},
		{verb: "create", resource: "pods/attach"}, {verb: "get", resource: "pods/attach"},
	}
	escalationTargets = []target{
		{verb: "bind", group: rbacGroup, resource: "roles"},
		// A RoleBinding can reference a ClusterRole, so bind on clusterroles
		// is meaningful within a namespace too.
		{verb: "bind", group: rbacGroup, resource: "clusterroles"},
		{verb: "escalate", group: rbacGroup, resource: "roles"},
		{verb: "escalate", group: rbacGroup, resource: "clusterroles", clusterOnly: true},
		{verb: "impersonate", resource: "users", clusterOnly: true},
		{verb: "impersonate", resource: "groups", clusterOnly: true},
		{verb: "impersonate", resource: "serviceaccounts"},
	}
)

// evaluate runs every rule over one grant.
func evaluate(g *grant) []*draft {
	var out []*draft
	add := func(id string, matched []*secureauditv1.PolicyRule, why string, narrow bool, detail, fix string) {
		r := ruleByID(id)
		d := &draft{rule: r, g: g, matched: matched, detail: detail, fix: fix}
		base := r.Severity
		if id == ClusterAdmin && g.namespaced() {
			base = secureauditv1.Severity_SEVERITY_HIGH
			why += ", namespace admin"
		}
		d.ladder = newLadder(base, why)
		if narrow {
			d.ladder.down("restricted by resourceNames")
		}
		if !g.namespaced() && base != secureauditv1.Severity_SEVERITY_CRITICAL && id != DanglingBinding {
			d.ladder.up("cluster-wide")
		}
		if g.group() {
			d.ladder.up("group subject")
		}
		// A grant confined to one ordinary namespace cannot by itself take
		// the cluster: it stays at HIGH at most. kube-system is not ordinary.
		if g.namespaced() && g.namespace != "kube-system" {
			d.ladder.atMost(secureauditv1.Severity_SEVERITY_HIGH, "namespace scope")
		}
		out = append(out, d)
	}
	sub := g.subject

	if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP && sub.GetName() == "system:masters" {
		add(SystemMasters, nil, "binds system:masters", false, "", editBinding(g)+" and remove the subject Group system:masters")
	}
	if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT && sub.GetName() == "default" {
		add(DefaultSA, nil, "default ServiceAccount bound to "+roleText(g.role), false, "",
			fmt.Sprintf("kubectl -n %s create serviceaccount NAME, bind the role to it, then %s and remove ServiceAccount %s/default",
				quote(sub.GetNamespace()), editBinding(g), sub.GetNamespace()))
	}
	if g.role.GetMissing() {
		add(DanglingBinding, nil, roleText(g.role)+" does not exist", false, "", deleteBinding(g))
		return out
	}

	// RBAC-001 and RBAC-002.
	var full []*secureauditv1.PolicyRule
	for _, r := range g.rules {
		if isFullWildcard(r) {
			full = append(full, r)
		}
	}
	admin := false
	isCR := g.role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE
	if (isCR && g.role.GetName() == "cluster-admin") || len(full) > 0 {
		admin = true
		narrow := len(full) > 0 && !slices.ContainsFunc(full, func(r *secureauditv1.PolicyRule) bool { return len(r.GetResourceNames()) == 0 })
		why := "every verb on every resource"
		if isCR && g.role.GetName() == "cluster-admin" {
			why = "bound to cluster-admin"
		}
		add(ClusterAdmin, full, why, narrow, "", deleteBinding(g)+" (or "+editBinding(g)+" to remove only this subject), then bind a role limited to what the subject needs")
	}
	if isCR && !g.namespaced() && (g.role.GetName() == "admin" || g.role.GetName() == "edit") {
		add(AdminEditCluster, nil, g.role.GetName()+" bound cluster-wide", false, "",
			deleteBinding(g)+", then grant "+g.role.GetName()+" per namespace: kubectl -n NAMESPACE create rolebinding NAME --clusterrole="+g.role.GetName()+" "+subjectFlag(sub))
	}

	if m := find(g.rules, g.namespaced(), secretsTargets...); m.ok() {
		add(SecretsRead, m.rules, "reads secrets: "+targetList(m.found), m.narrow, narrowNote(m),
			editRole(g)+" and drop get, list and watch on secrets"+aggNote(g))
	}
	if !admin {
		var wild []*secureauditv1.PolicyRule
		fields := map[string]bool{}
		for _, r := range g.rules {
			if f := wildcardFields(r); len(f) > 0 {
				wild = append(wild, r)
				for _, x := range f {
					fields[x] = true
				}
			}
		}
		if len(wild) > 0 {
			var names []string
			for _, f := range []string{"verbs", "resources", "apiGroups"} {
				if fields[f] {
					names = append(names, f)
				}
			}
			add(Wildcard, wild, "'*' in "+strings.Join(names, ", "), false, "",
				editRole(g)+" and replace '*' with the explicit "+strings.Join(names, ", ")+" needed"+aggNote(g))
		}
	}
	if m := find(g.rules, g.namespaced(), podCreate...); m.ok() {
		add(PodCreate, m.rules, "creates pods", m.narrow, narrowNote(m), editRole(g)+" and drop create on pods"+aggNote(g))
	}
	if m := find(g.rules, g.namespaced(), execTargets...); m.ok() {
		add(PodExec, m.rules, "exec/attach: "+targetList(m.found), m.narrow,
			"Granted: "+targetList(m.found)+"."+narrowNote(m),
			editRole(g)+" and drop "+targetList(m.found)+aggNote(g))
	}
	if m := find(g.rules, g.namespaced(), escalationTargets...); m.ok() {
		add(EscalationVerbs, m.rules, "escalation verbs: "+targetList(m.found), m.narrow,
			"Granted: "+targetList(m.found)+"."+narrowNote(m),
			editRole(g)+" and drop "+targetList(m.found)+aggNote(g))
	}
	return out
}

// chain raises a subject's pod-create findings to at least HIGH when the
// same subject can also read secrets in an overlapping scope (the same
// namespace, or either grant cluster-wide).
func chain(ds []*draft) {
	for _, pc := range ds {
		if pc.rule.ID != PodCreate {
			continue
		}
		for _, sr := range ds {
			if sr.rule.ID != SecretsRead || subjectKey(sr.g.subject) != subjectKey(pc.g.subject) {
				continue
			}
			if pc.g.namespaced() && sr.g.namespaced() && pc.g.namespace != sr.g.namespace {
				continue
			}
			pc.ladder.atLeast(secureauditv1.Severity_SEVERITY_HIGH, "chain: pod create plus secrets read (via "+bindingText(sr.g.binding)+")")
			break
		}
	}
}

func (d *draft) finding(s *snapshot.Snapshot) *secureauditv1.Finding {
	g := d.g
	scope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	if g.namespaced() {
		scope = &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: g.namespace}
	}
	matched := make([]*secureauditv1.PolicyRule, len(d.matched))
	for i, r := range d.matched {
		matched[i] = proto.CloneOf(r)
	}
	desc := d.rule.Description
	if d.detail != "" {
		desc += " " + d.detail
	}
	return &secureauditv1.Finding{
		Id:             findingID(d.rule.ID, g),
		RuleId:         d.rule.ID,
		Title:          d.rule.Title,
		Severity:       d.ladder.sev,
		SeverityReason: d.ladder.reason(),
		Subject: &secureauditv1.SubjectRef{
			Kind: g.subject.GetKind(), Name: g.subject.GetName(), Namespace: g.subject.GetNamespace(),
			DisplayName: displayName(s, g.subject),
		},
		Binding:        proto.CloneOf(g.binding),
		Role:           proto.CloneOf(g.role),
		Scope:          scope,
		MatchedRules:   matched,
		Controls:       append([]string(nil), d.rule.Controls...),
		Remediation:    d.rule.Remediation + " Command: " + d.fix,
		Description:    desc,
		Infrastructure: Infrastructure(g.binding.GetName(), g.subject),
	}
}

// findingID is the first 16 hex digits of the SHA-256 of the rule ID, the
// binding, the subject and the role, each as kind/namespace/name.
func findingID(ruleID string, g *grant) string {
	h := sha256.New()
	for _, part := range []string{
		ruleID,
		g.binding.GetKind().String() + "/" + g.binding.GetNamespace() + "/" + g.binding.GetName(),
		subjectKey(g.subject),
		g.role.GetKind().String() + "/" + g.role.GetNamespace() + "/" + g.role.GetName(),
	} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// displayName is the directory's name for a user (by UPN or object id) or a
// group (by object id), or "".
func displayName(s *snapshot.Snapshot, sub *secureauditv1.Subject) string {
	switch sub.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		if u, ok := s.UserByUPN(sub.GetName()); ok {
			return u.GetDisplayName()
		}
		if u, ok := s.UserByID(sub.GetName()); ok {
			return u.GetDisplayName()
		}
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		if g, ok := s.GroupByID(sub.GetName()); ok {
			return g.GetDisplayName()
		}
	}
	return ""
}

// Sort orders findings by severity (CRITICAL first), cluster scope before
// namespace scope, namespace, rule ID, subject, binding, role and ID.
func Sort(fs []*secureauditv1.Finding) {
	slices.SortStableFunc(fs, func(a, b *secureauditv1.Finding) int {
		return cmp.Or(
			cmp.Compare(a.GetSeverity(), b.GetSeverity()),
			cmp.Compare(a.GetScope().GetLevel(), b.GetScope().GetLevel()),
			cmp.Compare(a.GetScope().GetNamespace(), b.GetScope().GetNamespace()),
			cmp.Compare(a.GetRuleId(), b.GetRuleId()),
			cmp.Compare(a.GetSubject().GetKind(), b.GetSubject().GetKind()),
			cmp.Compare(a.GetSubject().GetNamespace(), b.GetSubject().GetNamespace()),
			cmp.Compare(a.GetSubject().GetName(), b.GetSubject().GetName()),
			cmp.Compare(a.GetBinding().GetKind(), b.GetBinding().GetKind()),
			cmp.Compare(a.GetBinding().GetNamespace(), b.GetBinding().GetNamespace()),
			cmp.Compare(a.GetBinding().GetName(), b.GetBinding().GetName()),
			cmp.Compare(a.GetRole().GetKind(), b.GetRole().GetKind()),
			cmp.Compare(a.GetRole().GetName(), b.GetRole().GetName()),
			cmp.Compare(a.GetId(), b.GetId()),
		)
	})
}

func subjectKey(s *secureauditv1.Subject) string {
	return s.GetKind().String() + "/" + s.GetNamespace() + "/" + s.GetName()
}

func targetList(ts []target) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

func narrowNote(m match) string {
	if m.narrow {
		return " Every matching rule is restricted by resourceNames, so only the named objects are reachable."
	}
	return ""
}

func aggNote(g *grant) string {
	if g.aggregated {
		return " (the role is aggregated: edit the ClusterRole that contributes the rule, since the aggregation controller overwrites edits)"
	}
	return ""
}

func roleText(r *secureauditv1.FindingRole) string {
	if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "Role " + r.GetNamespace() + "/" + r.GetName()
	}
	return "ClusterRole " + r.GetName()
}

func bindingText(b *secureauditv1.BindingRef) string {
	if b.GetKind() == secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING {
		return "RoleBinding " + b.GetNamespace() + "/" + b.GetName()
	}
	return "ClusterRoleBinding " + b.GetName()
}

func deleteBinding(g *grant) string {
	if g.namespaced() {
		return "kubectl -n " + quote(g.namespace) + " delete rolebinding " + quote(g.binding.GetName())
	}
	return "kubectl delete clusterrolebinding " + quote(g.binding.GetName())
}

func editBinding(g *grant) string {
	if g.namespaced() {
		return "kubectl -n " + quote(g.namespace) + " edit rolebinding " + quote(g.binding.GetName())
	}
	return "kubectl edit clusterrolebinding " + quote(g.binding.GetName())
}

func editRole(g *grant) string {
	if g.role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "kubectl -n " + quote(g.role.GetNamespace()) + " edit role " + quote(g.role.GetName())
	}
	return "kubectl edit clusterrole " + quote(g.role.GetName())
}

func subjectFlag(s *secureauditv1.Subject) string {
	switch s.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return "--group=" + quote(s.GetName())
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return "--serviceaccount=" + quote(s.GetNamespace()+":"+s.GetName())
	}
	return "--user=" + quote(s.GetName())
}

// quote returns s as one shell word: unchanged when it holds only safe
// characters, single-quoted otherwise. Names come from the cluster and are
// untrusted.
func quote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:@=", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
