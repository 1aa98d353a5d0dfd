// Package access computes effective RBAC permissions over a snapshot: what a
// subject may do, who may do something, and whether one request is allowed.
// It follows the Kubernetes RBAC authorizer exactly (rule matching, binding
// and subject semantics, the system:masters group) without importing any
// Kubernetes package, and resolves aggregated ClusterRoles from their label
// selectors, so that manifests whose aggregated rules were never filled in by
// the controller are read as a running cluster would read them.
//
// Aggregation follows the clusterrole-aggregation controller of
// kube-controller-manager (the risk-agent's snapshot package resolves it,
// once, for this engine and the rules alike). A ClusterRole with an
// aggregationRule gets the union of the CURRENT rules of the other
// ClusterRoles any of its selectors matches (selectors in order, roles by
// name, duplicates dropped), and that union REPLACES its rules: the rules
// written in the role itself are gone. When the union is empty (no role
// matches, or those that match hold no rules) the role keeps the rules it
// has. A role never selects itself. An aggregated role selecting another
// aggregated role reads that role's rules as they are when it is synced, so
// the controller repeats syncs until nothing changes; the engine does the
// same, in name order, from the rules in the snapshot (a live dump, already
// filled in, stays as it is). One case is order-dependent upstream:
// aggregated roles selecting each other in a cycle, where the rules of a
// member read before its own first sync circulate for good; the engine takes
// name order, and a cycle that never settles gives each of its roles the
// union of the rules it takes in turn.
//
// Rules match as in the authorizer, strings compared exactly: an empty verb
// matches only a request with an empty verb, which no API request has, so it
// grants nothing; resourceNames [""] allows the requests without a name
// (list, watch, create, deletecollection), and no named one.
//
// The engine is pure: it is built once from an immutable snapshot and
// answers queries without I/O. Its allow/deny decisions are checked against
// a real kube-apiserver's SubjectAccessReview by the differential test in
// test/kube.
package access

import (
	"cmp"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// Well-known users and groups of the Kubernetes authenticators.
const (
	// GroupAuthenticated holds every authenticated user.
	GroupAuthenticated = "system:authenticated"
	// GroupUnauthenticated holds the anonymous user.
	GroupUnauthenticated = "system:unauthenticated"
	// GroupServiceAccounts holds every ServiceAccount.
	GroupServiceAccounts = "system:serviceaccounts"
	// GroupMasters is the privileged group: the API server allows its
	// members everything before RBAC is consulted.
	GroupMasters = "system:masters"
	// UserAnonymous is the user of unauthenticated requests.
	UserAnonymous = "system:anonymous"
	// serviceAccountPrefix starts a ServiceAccount's user name.
	serviceAccountPrefix = "system:serviceaccount:"
)

// Identity is an authenticated user as the authorizer sees it: a name and
// groups (k8s.io/apiserver's user.Info).
type Identity struct {
	Name   string
	Groups []string
}

// ServiceAccountUser returns the user name of a ServiceAccount,
// system:serviceaccount:<namespace>:<name>.
func ServiceAccountUser(namespace, name string) string {
	return serviceAccountPrefix + namespace + ":" + name
}

// ServiceAccountGroup returns the group of a namespace's ServiceAccounts,
// system:serviceaccounts:<namespace>.
func ServiceAccountGroup(namespace string) string {
	return GroupServiceAccounts + ":" + namespace
}

// ForServiceAccount returns the identity a ServiceAccount's token
// authenticates as: its user name in the groups system:serviceaccounts,
// system:serviceaccounts:<namespace> and system:authenticated.
func ForServiceAccount(namespace, name string) Identity {
	return Identity{
		Name:   ServiceAccountUser(namespace, name),
		Groups: []string{GroupServiceAccounts, ServiceAccountGroup(namespace), GroupAuthenticated},
	}
}

// ForUser returns the identity the API server's impersonation gives a
// request made with kubectl's --as user and --as-group groups (k8s.io/apiserver
// pkg/endpoints/filters/impersonation.go), which is what kubectl auth can-i
// --as asks about:
//
//   - user is a ServiceAccount when it is a valid ServiceAccount user name,
//     system:serviceaccount:<namespace>:<name> with a DNS-1123 label namespace
//     and a DNS-1123 subdomain name (serviceaccount.SplitUsername); anything
//     else, system:serviceaccount:a:b:c for one, is a plain user name;
//   - a ServiceAccount gets the groups system:serviceaccounts and
//     system:serviceaccounts:<namespace> only when no group is given: with
//     --as-group it has exactly the groups given;
//   - system:authenticated is added unless the groups already hold it or
//     system:unauthenticated; for system:anonymous, system:unauthenticated
//     is added instead.
//
// A real ServiceAccount token always authenticates with both
// ServiceAccount groups (ForServiceAccount).
func ForUser(user string, groups ...string) Identity {
	id := Identity{Name: user, Groups: slices.Clone(groups)}
	if ns, _, ok := ParseServiceAccountUser(user); ok && len(groups) == 0 {
		id.Groups = []string{GroupServiceAccounts, ServiceAccountGroup(ns)}
	}
	if user == UserAnonymous {
		if !slices.Contains(id.Groups, GroupUnauthenticated) {
			id.Groups = append(id.Groups, GroupUnauthenticated)
		}
		return id
	}
	if !slices.Contains(id.Groups, GroupAuthenticated) && !slices.Contains(id.Groups, GroupUnauthenticated) {
		id.Groups = append(id.Groups, GroupAuthenticated)
	}
	return id
}

// ForGroup returns an identity that is only a member of group: what it is
// allowed is what the group itself is granted.
func ForGroup(group string) Identity {
	return Identity{Groups: []string{group}}
}

// ParseServiceAccountUser splits system:serviceaccount:<namespace>:<name> as
// the API server does (k8s.io/apiserver serviceaccount.SplitUsername): exactly
// two parts after the prefix, the namespace a DNS-1123 label and the name a
// DNS-1123 subdomain.
func ParseServiceAccountUser(user string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, serviceAccountPrefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 2 || !isDNS1123Label(parts[0]) || !isDNS1123Subdomain(parts[1]) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// isDNS1123Label reports whether s is a lowercase RFC 1123 label of at most
// 63 characters (k8s.io/apimachinery validation.IsDNS1123Label).
func isDNS1123Label(s string) bool { return len(s) <= 63 && isLabelChars(s) }

// isDNS1123Subdomain reports whether s is dot-separated RFC 1123 labels of at
// most 253 characters in all (validation.IsDNS1123Subdomain, which bounds
// only the whole).
func isDNS1123Subdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isLabelChars(l) {
			return false
		}
	}
	return true
}

// isLabelChars reports whether s is [a-z0-9]([-a-z0-9]*[a-z0-9])?.
func isLabelChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// Attributes describe one request (k8s.io/apiserver's authorizer.Attributes).
// A resource request names a verb, API group, resource, optional
// subresource, namespace (empty for cluster-scoped and all-namespace
// requests) and object name; a non-resource request names a verb and a path.
type Attributes struct {
	ResourceRequest bool
	Verb            string
	APIGroup        string
	Resource        string
	Subresource     string
	Namespace       string
	Name            string
	Path            string
}

// Binding identifies a RoleBinding or ClusterRoleBinding and the role it
// grants.
type Binding struct {
	Kind      secureauditv1.BindingKind
	Namespace string // empty for a ClusterRoleBinding
	Name      string
	RoleKind  secureauditv1.RoleKind
	Role      string
	// Eligible marks an eligible Azure role assignment of Privileged
	// Identity Management: it allows nothing until its holder activates
	// it. Allowed lists it apart (Decision.Eligible), WhoCan and
	// Permissions with the binding, whose String says so.
	Eligible bool
}

// String renders the binding as "ClusterRoleBinding name -> ClusterRole role"
// or "RoleBinding ns/name -> Role role" (an Azure grant's as
// "Azure role assignment ID -> Azure role NAME" or "AKS admin group ID ->
// cluster-admin").
func (b Binding) String() string {
	if s, ok := azureString(b); ok {
		return s
	}
	s := "ClusterRoleBinding " + b.Name
	if b.Kind == secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING {
		s = "RoleBinding " + b.Namespace + "/" + b.Name
	}
	role := "ClusterRole "
	if b.RoleKind == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		role = "Role "
	}
	return s + " -> " + role + b.Role
}

func compareBindings(a, b Binding) int {
	return cmp.Or(
		cmp.Compare(b.Kind, a.Kind), // cluster role bindings first
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
	)
}

// ruleSet is the resolved rules of one role, shared by every binding to it.
type ruleSet struct {
	id    int
	rules []*secureauditv1.PolicyRule
}

// binding is a binding with its resolved rules and subjects.
type binding struct {
	ref      Binding
	subjects []*secureauditv1.Subject
	rules    *ruleSet // nil when the role is missing: it grants nothing
}

// Engine answers access questions over one snapshot. It is safe for
// concurrent use.
type Engine struct {
	cluster []*binding            // ClusterRoleBindings, sorted by name
	byNS    map[string][]*binding // RoleBindings by namespace, sorted by name
	byUser  map[string][]*binding // user name (User subjects and ServiceAccount user names) -> bindings
	byGroup map[string][]*binding
	nsets   int // number of distinct rule sets
}

// New indexes the snapshot's bindings and resolves the rules of the roles
// they reference, with aggregated ClusterRoles expanded.
func New(s *snapshot.Snapshot) *Engine {
	e := &Engine{
		byNS:    map[string][]*binding{},
		byUser:  map[string][]*binding{},
		byGroup: map[string][]*binding{},
	}
	clusterSets := map[string]*ruleSet{}
	roleSets := map[string]*ruleSet{}
	clusterRules := func(name string) *ruleSet {
		if rs, ok := clusterSets[name]; ok {
			return rs
		}
		var rs *ruleSet
		if rules, ok := s.EffectiveClusterRoleRules(name); ok {
			rs = &ruleSet{id: e.nsets, rules: rules}
			e.nsets++
		}
		clusterSets[name] = rs
		return rs
	}
	roleRules := func(namespace, name string) *ruleSet {
		k := snapshot.Key(namespace, name)
		if rs, ok := roleSets[k]; ok {
			return rs
		}
		var rs *ruleSet
		if r, ok := s.Role(namespace, name); ok {
			rs = &ruleSet{id: e.nsets, rules: r.GetRules()}
			e.nsets++
		}
		roleSets[k] = rs
		return rs
	}
	for _, crb := range s.ClusterRoleBindings() {
		b := &binding{
			ref: Binding{
				Kind:     secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING,
				Name:     crb.GetMeta().GetName(),
				RoleKind: crb.GetRoleRef().GetKind(),
				Role:     crb.GetRoleRef().GetName(),
			},
			subjects: crb.GetSubjects(),
		}
		// The authorizer resolves a ClusterRoleBinding's roleRef as a
		// ClusterRole only; anything else grants nothing.
		if b.ref.RoleKind == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE {
			b.rules = clusterRules(b.ref.Role)
		}
		e.cluster = append(e.cluster, b)
		e.index(b, "")
	}
	for _, rb := range s.RoleBindings() {
		ns := rb.GetMeta().GetNamespace()
		b := &binding{
			ref: Binding{
				Kind:      secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING,
				Namespace: ns,
				Name:      rb.GetMeta().GetName(),
				RoleKind:  rb.GetRoleRef().GetKind(),
				Role:      rb.GetRoleRef().GetName(),
			},
			subjects: rb.GetSubjects(),
		}
		switch b.ref.RoleKind {
		case secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE:
			b.rules = clusterRules(b.ref.Role)
		case secureauditv1.RoleKind_ROLE_KIND_ROLE:
			b.rules = roleRules(ns, b.ref.Role)
		}
		e.byNS[ns] = append(e.byNS[ns], b)
		e.index(b, ns)
	}
	return e
}

// index records b under each of its subjects. A ServiceAccount subject is
// the user system:serviceaccount:<ns>:<name>, its namespace defaulting to
// the RoleBinding's (appliesToUser in k8s.io/kubernetes/pkg/registry/rbac/validation).
func (e *Engine) index(b *binding, bindingNS string) {
	add := func(m map[string][]*binding, k string) {
		if l := m[k]; len(l) == 0 || l[len(l)-1] != b {
			m[k] = append(l, b)
		}
	}
	for _, s := range b.subjects {
		switch s.GetKind() {
		case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
			add(e.byUser, s.GetName())
		case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
			add(e.byGroup, s.GetName())
		case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
			ns := cmp.Or(s.GetNamespace(), bindingNS)
			if ns != "" {
				add(e.byUser, ServiceAccountUser(ns, s.GetName()))
			}
		}
	}
}

// bindingsOf returns the bindings that bind id, deduplicated, in index order.
func (e *Engine) bindingsOf(id Identity) []*binding {
	seen := map[*binding]bool{}
	var out []*binding
	add := func(l []*binding) {
		for _, b := range l {
			if !seen[b] {
				seen[b] = true
				out = append(out, b)
			}
		}
	}
	if id.Name != "" {
		add(e.byUser[id.Name])
	}
	for _, g := range id.Groups {
		add(e.byGroup[g])
	}
	return out
}

// applies reports whether b is consulted for a request in namespace: every
// ClusterRoleBinding is (and every cluster-wide grant through Azure); a
// RoleBinding (or a namespace-scoped Azure grant) only for requests in its
// namespace.
func (b *binding) applies(namespace string) bool {
	return b.ref.Kind != secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING && b.ref.Namespace == "" ||
		namespace != "" && b.ref.Namespace == namespace
}

// Decision is the answer to one access check.
type Decision struct {
	Allowed bool
	// Privileged is set when the identity is in system:masters, which the
	// API server allows before RBAC is consulted.
	Privileged bool
	// Bindings lists every binding that allows the request, cluster role
	// bindings first, then by namespace and name.
	Bindings []Binding
	// Eligible lists the eligible Azure role assignments (PIM) that would
	// allow the request once activated; they do not make it Allowed.
	Eligible []Binding
}

// Allowed decides a request by id as the kube-apiserver does with RBAC
// authorization: members of system:masters are allowed everything;
// otherwise the request is allowed when a rule of a role bound to id allows
// it, through any ClusterRoleBinding or, for a request in a namespace, a
// RoleBinding of that namespace. RBAC has no deny rules.
func (e *Engine) Allowed(id Identity, a Attributes) Decision {
	var d Decision
	if slices.Contains(id.Groups, GroupMasters) {
		d.Allowed, d.Privileged = true, true
	}
	for _, b := range e.bindingsOf(id) {
		if b.rules == nil || !b.applies(a.Namespace) {
			continue
		}
		if slices.ContainsFunc(b.rules.rules, func(r *secureauditv1.PolicyRule) bool { return RuleAllows(r, a) }) {
			if b.ref.Eligible {
				d.Eligible = append(d.Eligible, b.ref)
				continue
			}
			d.Allowed = true
			d.Bindings = append(d.Bindings, b.ref)
		}
	}
	slices.SortFunc(d.Bindings, compareBindings)
	slices.SortFunc(d.Eligible, compareBindings)
	return d
}
