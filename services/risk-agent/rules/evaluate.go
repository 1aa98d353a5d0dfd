package rules

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// Grant is one (binding, subject) pair with the effective rules of the
// binding's role. Grants are read-only.
type Grant struct {
	Binding *secureauditv1.BindingRef
	Role    *secureauditv1.FindingRole
	Subject *secureauditv1.Subject
	// Namespace is the binding's namespace, "" for a cluster-wide grant.
	Namespace  string
	Rules      []*secureauditv1.PolicyRule
	aggregated bool // the role is an aggregated ClusterRole
	prof       *profile
	// privileged is set when Namespace is a privileged namespace (see
	// privilegedNamespaces).
	privileged bool
	// managed is what recognises the grant as platform-managed (see
	// recognise), "" when nothing does.
	managed string
	// contrib maps each rule of an aggregated ClusterRole to the ClusterRole
	// that defines it (nil for any other role): the role to edit, since the
	// aggregation controller overwrites the aggregated one.
	contrib map[*secureauditv1.PolicyRule]string
	// runs is set when the subject is a ServiceAccount that a workload of
	// the snapshot runs as: the workload identity of an installed
	// component.
	runs bool
}

func (g *Grant) namespaced() bool { return g.Namespace != "" }

func (g *Grant) group() bool {
	return g.Subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
}

// Evidence is the part of a grant's rules that gives it a capability.
type Evidence struct {
	// Rules are the matching policy rules, in the role's order.
	Rules []*secureauditv1.PolicyRule
	// Granted names the permissions found, such as "create pods".
	Granted string
	// Names is set when every matching rule is restricted by resourceNames:
	// the union of those names.
	Names []string
}

// Has reports whether the grant holds capability c, with the evidence.
func (g *Grant) Has(c Capability) (Evidence, bool) {
	if g.prof == nil {
		return Evidence{}, false
	}
	m := g.prof.caps[c]
	if !m.ok() {
		return Evidence{}, false
	}
	e := Evidence{Rules: m.rules, Granted: m.list}
	if m.narrow {
		for _, r := range m.rules {
			e.Names = append(e.Names, r.GetResourceNames()...)
		}
		slices.Sort(e.Names)
		e.Names = slices.Compact(e.Names)
	}
	return e, true
}

// FullAdmin reports whether the grant gives every verb on every resource
// (cluster-admin, or a '*' rule not restricted by resourceNames), with the
// matching rules.
func (g *Grant) FullAdmin() ([]*secureauditv1.PolicyRule, bool) {
	if g.Role.GetMissing() {
		return nil, false
	}
	if g.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE && g.Role.GetName() == "cluster-admin" {
		return g.prof.full, true
	}
	return g.prof.full, len(g.prof.full) > 0 && !g.prof.fullNarrow
}

// Analysis is the snapshot's grants with their capabilities, computed once
// and shared by the rules and the escalation-path search.
type Analysis struct {
	snap   *snapshot.Snapshot
	grants []*Grant
	sem    *secureauditv1.AuthorizerSemantics
	// streamGet is set for API servers before 1.35, where get on pods/exec,
	// pods/attach and pods/portforward suffices.
	streamGet bool
}

// Analyze expands every binding of s into grants and computes what each
// role grants at each scope, once per (role, scope), with the authorizer
// semantics of the snapshot's server version (see Semantics).
func Analyze(s *snapshot.Snapshot) *Analysis {
	sem := Semantics(s.Header())
	streamGet := !sem.GetStreamingNeedsCreate()
	a := &Analysis{snap: s, grants: grants(s, streamGet), sem: sem, streamGet: streamGet}
	type saKey struct{ ns, name string }
	runs := make(map[saKey]bool, len(s.Workloads()))
	for _, w := range s.Workloads() {
		runs[saKey{w.GetMeta().GetNamespace(), w.GetServiceAccount()}] = true
	}
	for _, g := range a.grants {
		g.managed = recognise(g)
		if g.Subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			g.runs = runs[saKey{g.Subject.GetNamespace(), g.Subject.GetName()}]
		}
	}
	return a
}

// ExternalGrant is a grant from outside the snapshot, such as Kubernetes
// permissions given through Azure on AKS (binding kind
// BINDING_KIND_AZURE_ROLE_ASSIGNMENT, role kind ROLE_KIND_AZURE_ROLE): its
// capabilities are computed from rules at its scope (namespace "" for
// cluster-wide) with the analysis's authorizer semantics, as a binding's
// would be. It is never platform-managed and is not among Grants.
func (a *Analysis) ExternalGrant(b *secureauditv1.BindingRef, role *secureauditv1.FindingRole, sub *secureauditv1.Subject, namespace string, rules []*secureauditv1.PolicyRule) *Grant {
	return &Grant{Binding: b, Role: role, Subject: sub, Namespace: namespace, Rules: rules, prof: newProfile(rules, namespace != "", a.streamGet)}
}

// Semantics returns the server version whose semantics the analysis
// applied, and where it came from.
func (a *Analysis) Semantics() *secureauditv1.AuthorizerSemantics { return proto.CloneOf(a.sem) }

// Snapshot returns the analysed snapshot.
func (a *Analysis) Snapshot() *snapshot.Snapshot { return a.snap }

// Grants returns every grant: ClusterRoleBindings by name, then
// RoleBindings by namespace and name, each binding's subjects in order.
func (a *Analysis) Grants() []*Grant { return a.grants }

// Evaluate runs the whole catalogue over s and returns the findings sorted
// by severity, cluster before namespace scope, namespace, rule ID, subject
// and binding.
func Evaluate(s *snapshot.Snapshot) []*secureauditv1.Finding {
	return Analyze(s).Findings()
}

// Findings runs the whole catalogue and returns the findings sorted as
// Evaluate does.
func (a *Analysis) Findings() []*secureauditv1.Finding {
	s := a.snap
	var out []*draft
	for _, g := range a.grants {
		out = append(out, evaluate(g)...)
	}
	chain(out)
	ctrl := presentControllers(a)
	out = append(out, controllerEscalation(a, ctrl)...)
	out = append(out, integrity(a, ctrl)...)
	out = append(out, unaudited(s)...)
	out = append(out, addonWidened(a)...)
	out = append(out, workloads(a, out)...)
	managedSAs := managedServiceAccounts(a)
	findings := make([]*secureauditv1.Finding, 0, len(out))
	for _, d := range out {
		f := d.finding(s)
		switch {
		case d.g != nil:
			f.Infrastructure = d.g.managed != ""
		case d.subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
			// A workload finding follows its ServiceAccount's grants.
			f.Infrastructure = managedSAs[d.subject.GetNamespace()+"/"+d.subject.GetName()]
		}
		findings = append(findings, f)
	}
	Sort(findings)
	return findings
}

// grants expands every binding into one grant per subject, with the
// effective rules of its role and the role's profile at the binding's scope.
func grants(s *snapshot.Snapshot, streamGet bool) []*Grant {
	// Profiles are shared by role (kind/namespace/name and scope) and, across
	// roles, by content: copies of the same rules (one Role per namespace
	// from the same chart) are matched once.
	byRole := map[string]*profile{}
	byContent := map[string]*profile{}
	var buf []byte
	prof := func(role *secureauditv1.FindingRole, rules []*secureauditv1.PolicyRule, namespaced bool) *profile {
		key := role.GetKind().String() + "/" + role.GetNamespace() + "/" + role.GetName()
		if namespaced {
			key += "/ns"
		}
		if p, ok := byRole[key]; ok {
			return p
		}
		buf = buf[:0]
		if namespaced {
			buf = append(buf, 'n')
		}
		for _, r := range rules {
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			buf = binary.AppendUvarint(buf, uint64(len(b)))
			buf = append(buf, b...)
		}
		p, ok := byContent[string(buf)]
		if !ok {
			p = newProfile(rules, namespaced, streamGet)
			byContent[string(buf)] = p
		}
		byRole[key] = p
		return p
	}
	privileged := privilegedNamespaces(s)
	// contrib is built once, at the first aggregated role bound.
	var contrib map[*secureauditv1.PolicyRule]string
	contributors := func(agg bool) map[*secureauditv1.PolicyRule]string {
		if !agg {
			return nil
		}
		if contrib == nil {
			contrib = map[*secureauditv1.PolicyRule]string{}
			for _, cr := range s.ClusterRoles() {
				for _, r := range cr.GetRules() {
					contrib[r] = cr.GetMeta().GetName()
				}
			}
		}
		return contrib
	}
	out := make([]*Grant, 0, len(s.ClusterRoleBindings())+len(s.RoleBindings()))
	for _, b := range s.ClusterRoleBindings() {
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: b.GetMeta().GetName()}
		role, rules, agg := resolve(s, b.GetRoleRef(), "")
		p := prof(role, rules, false)
		for _, sub := range unique(b.GetSubjects()) {
			out = append(out, &Grant{Binding: ref, Role: role, Subject: sub, Rules: rules, aggregated: agg, prof: p, contrib: contributors(agg)})
		}
	}
	for _, b := range s.RoleBindings() {
		ns := b.GetMeta().GetNamespace()
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: b.GetMeta().GetName(), Namespace: ns}
		role, rules, agg := resolve(s, b.GetRoleRef(), ns)
		p := prof(role, rules, true)
		for _, sub := range unique(b.GetSubjects()) {
			out = append(out, &Grant{Binding: ref, Role: role, Subject: sub, Namespace: ns, Rules: rules, aggregated: agg, prof: p, privileged: privileged[ns], contrib: contributors(agg)})
		}
	}
	return out
}

// unique drops repeated subjects of one binding (the API server accepts
// them): one grant, and so one finding per rule, per (binding, subject).
func unique(subs []*secureauditv1.Subject) []*secureauditv1.Subject {
	for i := 1; i < len(subs); i++ {
		for j := range i {
			if subjectKey(subs[i]) == subjectKey(subs[j]) {
				out := slices.Clone(subs[:i])
				for _, s := range subs[i:] {
					if !slices.ContainsFunc(out, func(o *secureauditv1.Subject) bool { return subjectKey(o) == subjectKey(s) }) {
						out = append(out, s)
					}
				}
				return out
			}
		}
	}
	return subs
}

// resolve finds a binding's role. A missing role is marked missing, except
// the bootstrap ClusterRoles, which a snapshot of manifests often references
// without defining: their rules are the captured upstream policy's.
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
	if rules, builtin := upstream(name); builtin {
		return role, rules, false
	}
	role.Missing = true
	return role, nil, false
}

// draft is a finding before chains and sorting. g is nil for findings about
// an object rather than a grant (integrity and workload rules); those set
// subject, role and scope themselves.
type draft struct {
	rule    Rule
	g       *Grant
	matched []*secureauditv1.PolicyRule
	ladder  *ladder
	narrow  bool   // every matched rule is restricted by resourceNames
	detail  string // appended to the description
	fix     string // the exact command

	subject *secureauditv1.Subject
	role    *secureauditv1.FindingRole
	binding *secureauditv1.BindingRef
	ns      string // scope namespace of an object finding
	// object is "kind/namespace/name" of an object finding that no
	// subject, binding or role names (RBAC-050): its ID hashes it.
	object string

	// folded are the IDs of the rules the same grant triggers that this
	// finding stands for (RBAC-001 implies every capability rule), without
	// repeats; the finding lists them sorted by ID.
	folded []string
}

// permRule is a rule that fires when a grant holds a capability. privileged
// rules fire only when the grant reaches a privileged namespace
// (cluster-wide, or a RoleBinding in one).
type permRule struct {
	id         string
	c          Capability
	why        string
	privileged bool
}

// permRules are the capability rules beyond the original four, in ID order.
var permRules = []permRule{
	{PVCreate, CapPVCreate, "creates persistentvolumes", false},
	{NodesProxy, CapNodesProxy, "kubelet API", false},
	{TokenCreate, CapTokenCreate, "mints ServiceAccount tokens", false},
	{SecretsWritePrivileged, CapSecretsWrite, "writes secrets in a privileged namespace", true},
	{WorkloadWrite, CapWorkloadWrite, "writes workloads", false},
	{PodPatch, CapPodPatch, "patches pods", false},
	{EphemeralContainers, CapEphemeral, "injects ephemeral containers", false},
	{PortForward, CapPortForward, "port-forward", false},
	{AdmissionPolicyWrite, CapAdmissionPolicyWrite, "writes admission policies", false},
	{CRDWrite, CapCRDWrite, "writes CRDs", false},
	{NodeWrite, CapNodeWrite, "writes nodes", false},
	{PodEvictPrivileged, CapPodEvict, "evicts pods in a privileged namespace", true},
	{StatusWrite, CapStatusWrite, "writes status", false},
	{NetworkWrite, CapNetworkWrite, "writes network objects", false},
	{ConfigMapWrite, CapConfigMapWrite, "writes configmaps", false},
	{DestructiveDelete, CapDestructiveDelete, "deletes", false},
	{EventsDelete, CapEventsDelete, "deletes events", false},
	{RBACWrite, CapRBACWrite, "writes RBAC objects", false},
	{WebhookWrite, CapWebhookWrite, "writes admission webhooks", false},
	{APIServiceWrite, CapAPIServiceWrite, "writes APIServices", false},
	{NamespaceWrite, CapNamespaceWrite, "writes namespaces", false},
}

// reachesKubeSystem reports whether a grant applies in kube-system.
func (g *Grant) reachesKubeSystem() bool { return !g.namespaced() || g.Namespace == "kube-system" }

// reachesPrivileged reports whether a grant applies in a privileged
// namespace.
func (g *Grant) reachesPrivileged() bool { return !g.namespaced() || g.privileged }

// podSecurityEnforce is the Pod Security admission label whose value
// "privileged" lets a namespace run privileged pods.
const podSecurityEnforce = "pod-security.kubernetes.io/enforce"

// privilegedNamespaces are where the control plane's and the nodes' most
// powerful pods run: kube-system, and every namespace whose Pod Security
// admission level is explicitly "privileged" (CNI, CSI node plugins,
// monitoring agents). A namespace without the label takes the cluster's
// default level, which the snapshot does not show, so it is not counted.
func privilegedNamespaces(s *snapshot.Snapshot) map[string]bool {
	out := map[string]bool{"kube-system": true}
	for _, ns := range s.Namespaces() {
		if ns.GetMeta().GetLabels()[podSecurityEnforce] == "privileged" {
			out[ns.GetMeta().GetName()] = true
		}
	}
	return out
}

// evaluate runs every grant rule over one grant.
func evaluate(g *Grant) []*draft {
	var out []*draft
	// into, once set, is the broader finding (RBAC-001) that later rule hits
	// of this grant are folded into rather than reported one by one.
	var into *draft
	// addAt adds a finding of rule id at base severity; add at the rule's.
	// fold records a hit of rule id in into, when set, and reports whether
	// it did: a folded hit needs no draft, so callers test it before
	// building one.
	fold := func(id string) bool {
		if into == nil {
			return false
		}
		if !slices.Contains(into.folded, id) {
			into.folded = append(into.folded, id)
		}
		return true
	}
	addAt := func(r Rule, base secureauditv1.Severity, matched []*secureauditv1.PolicyRule, why string, narrow bool, detail, fix string) *draft {
		id := r.ID
		d := &draft{rule: r, g: g, matched: matched, detail: detail, fix: fix, narrow: narrow}
		if id == ClusterAdmin && g.namespaced() {
			base = secureauditv1.Severity_SEVERITY_HIGH
			why += ", namespace admin"
		}
		d.ladder = newLadder(base, why)
		if narrow {
			d.ladder.down("restricted by resourceNames")
		}
		// Scope widens what a grant reaches, except a grant restricted by
		// resourceNames: the named objects are what it reaches, at any
		// scope.
		if !g.namespaced() && !narrow && base != secureauditv1.Severity_SEVERITY_CRITICAL && id != DanglingBinding {
			d.ladder.up("cluster-wide")
		}
		if g.group() {
			d.ladder.up("group subject")
		}
		// A grant confined to one ordinary namespace cannot by itself take
		// the cluster: it stays at HIGH at most. kube-system is not ordinary.
		if g.namespaced() && g.Namespace != "kube-system" {
			d.ladder.atMost(secureauditv1.Severity_SEVERITY_HIGH, "namespace scope")
		}
		// Named Secrets are at most LOW, at any scope and for any subject.
		if narrow && id == SecretsRead {
			d.ladder.atMost(low, "only named Secrets")
		}
		out = append(out, d)
		return d
	}
	add := func(id string, matched []*secureauditv1.PolicyRule, why string, narrow bool, detail, fix string) *draft {
		r := ruleByID(id)
		return addAt(r, r.Severity, matched, why, narrow, detail, fix)
	}
	sub := g.Subject
	p := g.prof

	if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP && sub.GetName() == "system:masters" {
		add(SystemMasters, nil, "binds system:masters", false, "", editBinding(g)+" and remove the subject Group system:masters")
	}
	if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT && sub.GetName() == "default" {
		add(DefaultSA, nil, "default ServiceAccount bound to "+roleText(g.Role), false, "",
			fmt.Sprintf("kubectl -n %s create serviceaccount NAME, bind the role to it, then %s and remove ServiceAccount %s/default",
				quote(sub.GetNamespace()), editBinding(g), sub.GetNamespace()))
	}
	if g.Role.GetMissing() {
		add(DanglingBinding, nil, roleText(g.Role)+" does not exist", false, "", deleteBinding(g))
		return out
	}
	if anon, everyone := anonymousSubject(sub), sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP && sub.GetName() == "system:authenticated"; (anon || everyone) && !discoveryOnly(g) {
		id, who := Anonymous, "unauthenticated"
		if everyone {
			id, who = AllAuthenticated, "every authenticated identity"
		}
		d := add(id, nil, who+" granted "+roleText(g.Role), false, "",
			editBinding(g)+" and remove the subject "+subjectText(sub))
		if objs, ok := namedReadOnly(g.Rules); ok {
			d.ladder.atMost(low, "only get on the named "+objs)
		}
	}

	// RBAC-001 and RBAC-002.
	var admin *draft
	isCR := g.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE
	if (isCR && g.Role.GetName() == "cluster-admin") || len(p.full) > 0 {
		narrow := len(p.full) > 0 && p.fullNarrow
		why := "every verb on every resource"
		if isCR && g.Role.GetName() == "cluster-admin" {
			why = "bound to cluster-admin"
		}
		admin = add(ClusterAdmin, p.full, why, narrow, "", deleteBinding(g)+" (or "+editBinding(g)+" to remove only this subject), then bind a role limited to what the subject needs")
	}
	if isCR && !g.namespaced() && (g.Role.GetName() == "admin" || g.Role.GetName() == "edit") {
		add(AdminEditCluster, nil, g.Role.GetName()+" bound cluster-wide", false, "",
			deleteBinding(g)+", then grant "+g.Role.GetName()+" per namespace: kubectl -n NAMESPACE create rolebinding NAME --clusterrole="+g.Role.GetName()+" "+subjectFlag(sub))
	}

	if m := p.caps[CapSecretsRead]; m.ok() {
		d := add(SecretsRead, m.rules, "reads secrets: "+m.short, m.narrow, narrowNote(m),
			editRoleOf(g, m.rules)+" and drop get, list and watch on secrets"+aggNote(g, m.rules))
		// Named Secrets of its own namespace, read by the workload identity
		// of an installed component (its own certificate, its own
		// password), are how a component keeps its configuration: an
		// informational hit, kept in report.json and SARIF with its
		// controls, not an entry of the reviewer's list. A grant in another
		// namespace, cluster-wide, to a person or group, or to a
		// ServiceAccount nothing runs as stays LOW.
		if m.narrow && ownNamespaceComponent(g) && !slices.ContainsFunc(m.rules, namesTokenSecret) {
			d.ladder.atMost(info, "only named Secrets of its own namespace, read by an installed component's workload identity")
			d.detail += " The subject is the ServiceAccount a workload of the snapshot runs as, and the Secrets are in its own namespace: informational, listed for completeness."
		}
	}
	if w := p.wildcard; w.kind != wildNone {
		// A wildcard that only reads Secrets, or only reaches custom
		// resource groups, is not a full wildcard: LOW, saying what it is.
		into = admin // folded into RBAC-001, which says '*' already
		if !fold(Wildcard) {
			r := ruleByID(Wildcard)
			base := r.Severity
			if w.kind != wildFull {
				base = low
			}
			names := strings.Join(w.fields, ", ")
			d := addAt(r, base, w.rules, w.why(names), false, w.detail(),
				editRoleOf(g, w.rules)+" and replace '*' with the explicit "+names+" needed"+aggNote(g, w.rules))
			if w.kind != wildFull {
				d.ladder.atMost(low, "not a full wildcard")
			}
		}
		into = nil
	}
	if m := p.caps[CapPodCreate]; m.ok() {
		add(PodCreate, m.rules, "creates pods", m.narrow, narrowNote(m), editRoleOf(g, m.rules)+" and drop create on pods"+aggNote(g, m.rules))
	}
	if m := p.caps[CapExec]; m.ok() {
		add(PodExec, m.rules, "exec/attach: "+m.short, m.narrow,
			"Granted: "+m.list+"."+narrowNote(m),
			editRoleOf(g, m.rules)+" and drop "+m.list+aggNote(g, m.rules))
	}
	if m := p.caps[CapEscalation]; m.ok() {
		add(EscalationVerbs, m.rules, "escalation verbs: "+m.short, m.narrow,
			"Granted: "+m.list+"."+narrowNote(m),
			editRoleOf(g, m.rules)+" and drop "+m.list+aggNote(g, m.rules))
	}
	// A full-wildcard grant implies every rule below; RBAC-001 says so and
	// repeating each one per admin binding would only bury the rest: their
	// hits are folded into it, so that their controls still count.
	into = admin
	if approval, signers := p.caps[CapCSRApproval], p.caps[CapSignersApprove]; approval.ok() && signers.ok() && !fold(CSRApproval) {
		rules := mergeRules(p.all, approval.rules, signers.rules)
		found := append(append([]target(nil), approval.found...), signers.found...)
		add(CSRApproval, rules, "approves CSRs: "+summary(found), approval.narrow && signers.narrow,
			"Granted: "+targetList(found)+".", editRoleOf(g, rules)+" and drop "+targetList(found)+aggNote(g, rules))
	}
	if bind, create := p.caps[CapBind], p.caps[CapCreateBindings]; bind.ok() && create.ok() && !fold(BindCreate) {
		rules := mergeRules(p.all, bind.rules, create.rules)
		found := append(append([]target(nil), bind.found...), create.found...)
		detail := "Granted: " + targetList(found) + "."
		narrow := bind.narrow
		if narrow {
			var names []string
			for _, r := range bind.rules {
				names = append(names, r.GetResourceNames()...)
			}
			detail += " bind is restricted to the roles: " + strings.Join(names, ", ") + "."
			// Restricting bind to a powerful role restricts nothing.
			if slices.ContainsFunc(names, builtinName) {
				narrow = false
			}
		}
		add(BindCreate, rules, "bind with create on bindings: "+summary(found), narrow, detail,
			editRoleOf(g, bind.rules)+" and drop "+targetList(bind.found)+aggNote(g, bind.rules))
	}
	for _, pr := range permRules {
		m := p.caps[pr.c]
		if !m.ok() || pr.privileged && !g.reachesPrivileged() {
			continue
		}
		if pr.id == TokenCreate && ownTokenOnly(g, m) {
			continue // minting its own token gains the subject nothing
		}
		if fold(pr.id) {
			continue
		}
		narrow := m.narrow
		if pr.id == ConfigMapWrite && narrow && slices.ContainsFunc(m.rules, func(r *secureauditv1.PolicyRule) bool {
			return slices.Contains(r.GetResourceNames(), "coredns")
		}) {
			narrow = false // restricted to the one ConfigMap that matters
		}
		detail := "Granted: " + m.list + "." + narrowNote(m)
		if pr.id == AdmissionPolicyWrite && !narrow {
			detail += mutatingPolicyNote(m)
		}
		d := add(pr.id, m.rules, pr.why+": "+m.short, narrow,
			detail,
			editRoleOf(g, m.rules)+" and drop "+m.list+aggNote(g, m.rules))
		if pr.id == ConfigMapWrite && g.reachesKubeSystem() {
			d.ladder.up("reaches kube-system/coredns")
		}
	}
	return out
}

// mutatingPolicyNote says, for a write on cluster-wide policies that do
// more than validate (Kyverno ClusterPolicies, MutatingAdmissionPolicies),
// what such a policy can do: the write reaches every namespace the policy
// matches, as a mutating webhook's would. "" for writes on validating
// policies or namespaced ones alone.
func mutatingPolicyNote(m match) string {
	var kinds []string
	for _, t := range m.found {
		if t.verb != "create" && t.verb != "update" && t.verb != "patch" {
			continue
		}
		k := ""
		switch {
		case t.group == "kyverno.io" && t.resource == "clusterpolicies":
			k = "Kyverno ClusterPolicies"
		case t.group == admissionGroup && (t.resource == "mutatingadmissionpolicies" || t.resource == "mutatingadmissionpolicybindings"):
			k = "MutatingAdmissionPolicies"
		}
		if k != "" && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return ""
	}
	return " " + strings.Join(kinds, " and ") + " do more than validate: a mutate rule rewrites any object the API server admits in the namespaces it matches " +
		"and the engine's configuration does not exclude (a pod's image or command, including the pods of privileged controllers, which then run the code with their rights), and a Kyverno generate rule creates objects " +
		"with the Kyverno background controller's rights; writing them cluster-wide is as strong as writing a mutating webhook."
}

// namesTokenSecret reports whether a rule names a Secret that may hold a
// ServiceAccount token (kubernetes.io/service-account-token Secrets are
// named <serviceaccount>-token-<suffix> by the token controller, or
// <serviceaccount>-token by hand): the snapshot never reads Secrets, so
// such a name keeps a named Secret read from being informational.
func namesTokenSecret(r *secureauditv1.PolicyRule) bool {
	return slices.ContainsFunc(r.GetResourceNames(), func(n string) bool {
		return strings.Contains(n, "-token-") || strings.HasSuffix(n, "-token")
	})
}

// ownNamespaceComponent reports whether a grant is a RoleBinding in its
// ServiceAccount subject's own namespace, and a workload of the snapshot
// runs as that ServiceAccount.
func ownNamespaceComponent(g *Grant) bool {
	return g.runs && g.namespaced() && g.Namespace == g.Subject.GetNamespace()
}

// ownTokenOnly reports whether a token-create match reaches only the
// subject's own ServiceAccount: the subject is a ServiceAccount, the grant
// applies in its namespace only, and every matched rule names it alone.
func ownTokenOnly(g *Grant, m match) bool {
	sub := g.Subject
	if sub.GetKind() != secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT ||
		!g.namespaced() || g.Namespace != sub.GetNamespace() || !m.narrow {
		return false
	}
	for _, r := range m.rules {
		for _, n := range r.GetResourceNames() {
			if n != sub.GetName() {
				return false
			}
		}
	}
	return true
}

// mergeRules returns the union of the given rule lists in all's order.
func mergeRules(all []*secureauditv1.PolicyRule, lists ...[]*secureauditv1.PolicyRule) []*secureauditv1.PolicyRule {
	var out []*secureauditv1.PolicyRule
	for _, r := range all {
		for _, l := range lists {
			if slices.Contains(l, r) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// anonymousSubject reports whether s stands for unauthenticated requests.
func anonymousSubject(s *secureauditv1.Subject) bool {
	switch s.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		return s.GetName() == "system:anonymous"
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return s.GetName() == "system:unauthenticated" || s.GetName() == "system:anonymous"
	}
	return false
}

// namedReadOnly reports whether rules grant nothing but get on named
// objects of non-sensitive kinds, and which ("configmaps pipelines-info"):
// no Secret, no subresource, no wildcard, no non-resource URL.
func namedReadOnly(rules []*secureauditv1.PolicyRule) (string, bool) {
	var objs []string
	for _, r := range rules {
		if len(r.GetNonResourceUrls()) > 0 || len(r.GetResourceNames()) == 0 ||
			len(r.GetResources()) == 0 || slices.Contains(r.GetApiGroups(), "*") {
			return "", false
		}
		for _, v := range r.GetVerbs() {
			if v != "get" {
				return "", false
			}
		}
		for _, res := range r.GetResources() {
			if res == "*" || res == "secrets" || strings.Contains(res, "/") {
				return "", false
			}
			objs = append(objs, res+" "+strings.Join(r.GetResourceNames(), ", "))
		}
	}
	if len(objs) == 0 {
		return "", false
	}
	return strings.Join(objs, "; "), true
}

// discoveryOnly reports whether a grant gives no more than the default
// discovery roles: one of those roles by name (whose contents RBAC-035
// checks), or rules that grant only discovery.
func discoveryOnly(g *Grant) bool {
	if g.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE {
		switch g.Role.GetName() {
		case "system:discovery", "system:basic-user", "system:public-info-viewer":
			return true
		}
	}
	// A built-in referenced but not defined (manifests): only the discovery
	// roles above are known to be harmless.
	if len(g.Rules) == 0 && g.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE && builtinName(g.Role.GetName()) {
		return false
	}
	return g.prof.discovery
}

// chain raises a subject's pod-create findings to at least HIGH when the
// same subject can also read secrets in an overlapping scope (the same
// namespace, or either grant cluster-wide).
func chain(ds []*draft) {
	// Secrets-read grants per subject, in draft order.
	reads := map[string][]*draft{}
	for _, sr := range ds {
		if sr.rule.ID == SecretsRead {
			k := subjectKey(sr.g.Subject)
			reads[k] = append(reads[k], sr)
		}
	}
	for _, pc := range ds {
		if pc.rule.ID != PodCreate {
			continue
		}
		for _, sr := range reads[subjectKey(pc.g.Subject)] {
			if pc.g.namespaced() && sr.g.namespaced() && pc.g.Namespace != sr.g.Namespace || sr.narrow {
				continue
			}
			pc.ladder.atLeast(secureauditv1.Severity_SEVERITY_HIGH, "chain: pod create plus secrets read (via "+bindingText(sr.g.Binding)+")")
			break
		}
	}
}

func (d *draft) finding(s *snapshot.Snapshot) *secureauditv1.Finding {
	subject, binding, role, ns := d.subject, d.binding, d.role, d.ns
	if g := d.g; g != nil {
		subject, binding, role, ns = g.Subject, g.Binding, g.Role, g.Namespace
	}
	scope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	if ns != "" {
		scope.Level, scope.Namespace = secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, ns
	}
	matched := make([]*secureauditv1.PolicyRule, len(d.matched))
	for i, r := range d.matched {
		matched[i] = proto.CloneOf(r)
	}
	idSubject := subject
	if d.object != "" {
		idSubject = &secureauditv1.Subject{Name: d.object}
	}
	f := d.rule.Finding(registry.Hit{
		ID:             findingID(d.rule.ID, binding, idSubject, role),
		Severity:       d.ladder.sev,
		SeverityReason: d.ladder.reason(),
		Scope:          scope,
		Detail:         d.detail,
		Command:        d.fix,
		Folded:         d.folded,
	})
	f.MatchedRules = matched
	if subject != nil {
		f.Subject = s.SubjectRef(subject)
	}
	if binding != nil {
		f.Binding = proto.CloneOf(binding)
	}
	if role != nil {
		f.Role = proto.CloneOf(role)
	}
	return f
}

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// FindingID is the stable ID of a finding of rule ruleID about a subject
// granted through binding and role (any of which may be nil); see findingID.
func FindingID(ruleID string, binding *secureauditv1.BindingRef, subject *secureauditv1.Subject, role *secureauditv1.FindingRole) string {
	return findingID(ruleID, binding, subject, role)
}

// findingID is the first 16 hex digits of the SHA-256 of the rule ID, the
// binding, the subject and the role, each as kind/namespace/name.
func findingID(ruleID string, b *secureauditv1.BindingRef, sub *secureauditv1.Subject, r *secureauditv1.FindingRole) string {
	// A stack buffer holds the usual key; longer names spill to the heap.
	var arr [256]byte
	buf := append(arr[:0], ruleID...)
	buf = append(buf, 0)
	part := func(kind, ns, name string) {
		buf = append(buf, kind...)
		buf = append(buf, '/')
		buf = append(buf, ns...)
		buf = append(buf, '/')
		buf = append(buf, name...)
		buf = append(buf, 0)
	}
	part(b.GetKind().String(), b.GetNamespace(), b.GetName())
	part(sub.GetKind().String(), sub.GetNamespace(), sub.GetName())
	part(r.GetKind().String(), r.GetNamespace(), r.GetName())
	sum := sha256.Sum256(buf)
	var out [16]byte
	hex.Encode(out[:], sum[:8])
	return string(out[:])
}

// Sort orders findings by severity (CRITICAL first), cluster scope before
// namespace scope, namespace, rule ID, subject, binding, role and ID.
func Sort(fs []*secureauditv1.Finding) {
	slices.SortStableFunc(fs, compareFindings)
}

func compareFindings(a, b *secureauditv1.Finding) int {
	if c := cmp.Compare(a.GetSeverity(), b.GetSeverity()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.GetScope().GetLevel(), b.GetScope().GetLevel()); c != 0 {
		return c
	}
	if c := strings.Compare(a.GetScope().GetNamespace(), b.GetScope().GetNamespace()); c != 0 {
		return c
	}
	if c := strings.Compare(a.GetRuleId(), b.GetRuleId()); c != 0 {
		return c
	}
	sa, sb := a.GetSubject(), b.GetSubject()
	if c := cmp.Compare(sa.GetKind(), sb.GetKind()); c != 0 {
		return c
	}
	if c := strings.Compare(sa.GetNamespace(), sb.GetNamespace()); c != 0 {
		return c
	}
	if c := strings.Compare(sa.GetName(), sb.GetName()); c != 0 {
		return c
	}
	ba, bb := a.GetBinding(), b.GetBinding()
	if c := cmp.Compare(ba.GetKind(), bb.GetKind()); c != 0 {
		return c
	}
	if c := strings.Compare(ba.GetNamespace(), bb.GetNamespace()); c != 0 {
		return c
	}
	if c := strings.Compare(ba.GetName(), bb.GetName()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.GetRole().GetKind(), b.GetRole().GetKind()); c != 0 {
		return c
	}
	if c := strings.Compare(a.GetRole().GetName(), b.GetRole().GetName()); c != 0 {
		return c
	}
	return strings.Compare(a.GetId(), b.GetId())
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

// aggNote explains, for an aggregated role, why the fix edits another
// ClusterRole: the one that contributes the rules (editRoleOf), or, when
// none is known, that the contributor is to be edited.
func aggNote(g *Grant, rules []*secureauditv1.PolicyRule) string {
	if !g.aggregated {
		return ""
	}
	if len(contributorsOf(g, rules)) > 0 {
		return " (" + roleText(g.Role) + " only aggregates the rules: the aggregation controller overwrites edits of it)"
	}
	return " (the role is aggregated: edit the ClusterRole that contributes the rule, since the aggregation controller overwrites edits)"
}

// editRoleOf is the command that edits where rules come from: the role of
// the grant, or for an aggregated ClusterRole the ClusterRoles that
// contribute the rules, each edited in turn.
func editRoleOf(g *Grant, rules []*secureauditv1.PolicyRule) string {
	names := contributorsOf(g, rules)
	if len(names) == 0 {
		return editRole(g)
	}
	cmds := make([]string, len(names))
	for i, n := range names {
		cmds[i] = "kubectl edit clusterrole " + quote(n)
	}
	return strings.Join(cmds, ", then ")
}

// contributorsOf names, sorted, the ClusterRoles that contribute rules to
// an aggregated grant's role; nil for any other grant, or when a rule's
// contributor is unknown (the role lists rules of its own, which the
// aggregation controller replaces).
func contributorsOf(g *Grant, rules []*secureauditv1.PolicyRule) []string {
	if !g.aggregated || g.contrib == nil {
		return nil
	}
	var out []string
	for _, r := range rules {
		// A profile is shared by roles of the same rules, in the same
		// order: a matched rule may be another role's, at the same index.
		if g.prof != nil && len(g.prof.all) == len(g.Rules) && !slices.Contains(g.Rules, r) {
			i := slices.Index(g.prof.all, r)
			if i < 0 {
				return nil
			}
			r = g.Rules[i]
		}
		n, ok := g.contrib[r]
		if !ok || n == g.Role.GetName() {
			return nil
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func roleText(r *secureauditv1.FindingRole) string {
	if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "Role " + r.GetNamespace() + "/" + r.GetName()
	}
	return "ClusterRole " + r.GetName()
}

func bindingText(b *secureauditv1.BindingRef) string {
	switch b.GetKind() {
	case secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING:
		return "RoleBinding " + b.GetNamespace() + "/" + b.GetName()
	case secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT:
		return "Azure role assignment " + b.GetName()
	case secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP:
		return "AKS admin group " + b.GetName()
	}
	return "ClusterRoleBinding " + b.GetName()
}

func deleteBinding(g *Grant) string {
	if g.namespaced() {
		return "kubectl -n " + quote(g.Namespace) + " delete rolebinding " + quote(g.Binding.GetName())
	}
	return "kubectl delete clusterrolebinding " + quote(g.Binding.GetName())
}

func editBinding(g *Grant) string {
	if g.namespaced() {
		return "kubectl -n " + quote(g.Namespace) + " edit rolebinding " + quote(g.Binding.GetName())
	}
	return "kubectl edit clusterrolebinding " + quote(g.Binding.GetName())
}

func editRole(g *Grant) string {
	if g.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "kubectl -n " + quote(g.Role.GetNamespace()) + " edit role " + quote(g.Role.GetName())
	}
	return "kubectl edit clusterrole " + quote(g.Role.GetName())
}

// SubjectText names a subject for people: "User alice",
// "ServiceAccount ns/name".
func SubjectText(s *secureauditv1.Subject) string { return subjectText(s) }

// BindingText names a binding for people: "RoleBinding ns/name".
func BindingText(b *secureauditv1.BindingRef) string { return bindingText(b) }

func subjectText(s *secureauditv1.Subject) string {
	switch s.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return "Group " + s.GetName()
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return "ServiceAccount " + s.GetNamespace() + "/" + s.GetName()
	}
	return "User " + s.GetName()
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

// Quote returns s as one shell word (see quote), for commands built from
// untrusted names.
func Quote(s string) string { return quote(s) }

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
