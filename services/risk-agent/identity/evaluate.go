package identity

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// DefaultStaleDays is the sign-in age past which an account is stale.
const DefaultStaleDays = 90

// Config tunes the identity rules.
type Config struct {
	// StaleDays is how many days without a sign-in make an account stale
	// (ENTRA-010); 0 or less means DefaultStaleDays.
	StaleDays int
	// CredentialExpiryDays is how close to its end date a client secret or
	// certificate is expiring (ENTRA-013); 0 or less means
	// DefaultCredentialExpiryDays.
	CredentialExpiryDays int
	// SecretMaxAgeDays is the age past which a client secret is due for
	// rotation (ENTRA-013); 0 or less means DefaultSecretMaxAgeDays.
	SecretMaxAgeDays int
}

// Workload identity and pod identity markers.
const (
	annotationClientID = "azure.workload.identity/client-id"
	labelPodIdentity   = "aadpodidbinding"
)

// binding is one (binding, subject) pair of the snapshot.
type binding struct {
	ref     *secureauditv1.BindingRef
	role    string // "ClusterRole admin"
	subject *secureauditv1.Subject
	single  bool // the binding has this one subject
}

func (b *binding) scope() *secureauditv1.Scope {
	if b.ref.GetNamespace() != "" {
		return &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: b.ref.GetNamespace()}
	}
	return &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
}

func (b *binding) text() string {
	if b.ref.GetNamespace() != "" {
		return fmt.Sprintf("RoleBinding %s/%s (%s)", b.ref.GetNamespace(), b.ref.GetName(), b.role)
	}
	return fmt.Sprintf("ClusterRoleBinding %s (%s)", b.ref.GetName(), b.role)
}

// unbind is the command that removes the subject from the binding.
func (b *binding) unbind() string {
	kind, ns := "clusterrolebinding", ""
	if b.ref.GetNamespace() != "" {
		kind, ns = "rolebinding", "-n "+b.ref.GetNamespace()+" "
	}
	if b.single {
		return fmt.Sprintf("kubectl %sdelete %s %s", ns, kind, b.ref.GetName())
	}
	return fmt.Sprintf("kubectl %sedit %s %s (remove subject %s)", ns, kind, b.ref.GetName(), b.subject.GetName())
}

func bindings(s *snapshot.Snapshot) []*binding {
	var out []*binding
	for _, b := range s.ClusterRoleBindings() {
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: b.GetMeta().GetName()}
		for _, sub := range b.GetSubjects() {
			out = append(out, &binding{ref: ref, role: roleText(b.GetRoleRef()), subject: sub, single: len(b.GetSubjects()) == 1})
		}
	}
	for _, b := range s.RoleBindings() {
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: b.GetMeta().GetName(), Namespace: b.GetMeta().GetNamespace()}
		for _, sub := range b.GetSubjects() {
			out = append(out, &binding{ref: ref, role: roleText(b.GetRoleRef()), subject: sub, single: len(b.GetSubjects()) == 1})
		}
	}
	return out
}

func roleText(r *secureauditv1.RoleRef) string {
	if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "Role " + r.GetName()
	}
	return "ClusterRole " + r.GetName()
}

// evaluator collects the findings of one Evaluate call.
type evaluator struct {
	s   *snapshot.Snapshot
	d   *directory
	cfg Config
	out []*secureauditv1.Finding
	// spReach: the service principals that reach the cluster (ENTRA-013),
	// by lower-case object ID.
	spReach map[string]*spAccess
}

// Evaluate runs the identity catalogue over the snapshot, the directory
// chunks the entra-agent returned (none when no directory was available)
// and the RBAC findings of rules.Evaluate, and returns the findings in Sort's
// order. Without directory chunks only the rules that need no
// directory (ENTRA-006) run.
func Evaluate(s *snapshot.Snapshot, dir []*secureauditv1.DirectoryChunk, rbac []*secureauditv1.Finding, cfg Config) []*secureauditv1.Finding {
	if cfg.StaleDays <= 0 {
		cfg.StaleDays = DefaultStaleDays
	}
	if cfg.CredentialExpiryDays <= 0 {
		cfg.CredentialExpiryDays = DefaultCredentialExpiryDays
	}
	if cfg.SecretMaxAgeDays <= 0 {
		cfg.SecretMaxAgeDays = DefaultSecretMaxAgeDays
	}
	e := &evaluator{s: s, d: index(dir), cfg: cfg}
	e.podIdentity()
	if e.d.present {
		e.workloadIdentities()
		e.bindings()
		e.credentialHygiene()
		e.pipelines(rbac)
	}
	Sort(e.out)
	return e.out
}

// add appends a finding of rule id; key names the objects involved and
// makes the finding's fingerprint.
func (e *evaluator) add(id string, sev secureauditv1.Severity, reason string, sub *secureauditv1.SubjectRef, b *secureauditv1.BindingRef, scope *secureauditv1.Scope, detail, fix string, key ...string) {
	sum := sha256.Sum256([]byte(id + "\x00" + strings.Join(key, "\x00")))
	f := ruleByID(id).Finding(registry.Hit{
		ID:             hex.EncodeToString(sum[:8]),
		Severity:       sev,
		SeverityReason: reason,
		Scope:          scope,
		Detail:         detail,
		Command:        fix,
	})
	f.Subject = sub
	f.Binding = proto.CloneOf(b)
	e.out = append(e.out, f)
}

// memberRef names a reached user or service principal as a subject.
func memberRef(m member) *secureauditv1.SubjectRef {
	if m.user != nil {
		return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: m.user.GetUserPrincipalName(), DisplayName: m.user.GetDisplayName()}
	}
	return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: m.sp.GetId(), DisplayName: m.sp.GetDisplayName(), ServicePrincipal: true}
}

// removeMember is the command that takes m's access through b away.
func removeMember(m member, b *binding) string {
	if len(m.path) > 0 {
		return fmt.Sprintf("az ad group member remove --group %s --member-id %s", m.path[len(m.path)-1].GetId(), m.id())
	}
	return b.unbind()
}

func clusterScope() *secureauditv1.Scope {
	return &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
}

func namespaceScope(ns string) *secureauditv1.Scope {
	return &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: ns}
}

// podIdentity: ENTRA-006, workloads selecting a legacy AAD pod identity.
func (e *evaluator) podIdentity() {
	for _, w := range e.s.Workloads() {
		sel, ok := w.GetMeta().GetLabels()[labelPodIdentity]
		if !ok {
			continue
		}
		ns, name := w.GetMeta().GetNamespace(), w.GetMeta().GetName()
		sub := &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: w.GetServiceAccount(), Namespace: ns}
		detail := fmt.Sprintf("%s %s/%s (ServiceAccount %s) carries %s=%q.", w.GetKind(), ns, name, w.GetServiceAccount(), labelPodIdentity, sel)
		fix := fmt.Sprintf("kubectl -n %s annotate serviceaccount %s %s=<managed identity client ID>, then remove the %s label from %s %s", ns, w.GetServiceAccount(), annotationClientID, labelPodIdentity, strings.ToLower(w.GetKind()), name)
		e.add(PodIdentity, 0, "", sub, nil, namespaceScope(ns), detail, fix, w.GetKind(), ns, name)
	}
}

// workloadIdentities: ENTRA-004, ServiceAccounts whose client ID the
// directory does not hold.
func (e *evaluator) workloadIdentities() {
	for _, sa := range e.s.ServiceAccounts() {
		cid, ok := sa.GetMeta().GetAnnotations()[annotationClientID]
		if !ok || !e.d.unresolved[unresolvedKey(secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, cid)] {
			continue
		}
		ns, name := sa.GetMeta().GetNamespace(), sa.GetMeta().GetName()
		sub := &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: name, Namespace: ns}
		users := e.podsOf(ns, name)
		detail := fmt.Sprintf("ServiceAccount %s/%s names client ID %s; no managed identity or application with that client ID exists in the directory.", ns, name, cid)
		if len(users) > 0 {
			detail += " Used by " + strings.Join(users, ", ") + "."
		}
		fix := fmt.Sprintf("kubectl -n %s annotate serviceaccount %s %s-", ns, name, annotationClientID)
		e.add(MissingWorkloadID, 0, "", sub, nil, namespaceScope(ns), detail, fix, ns, name, lower(cid))
	}
}

func (e *evaluator) podsOf(ns, sa string) []string {
	var out []string
	for _, w := range e.s.Workloads() {
		if w.GetMeta().GetNamespace() == ns && w.GetServiceAccount() == sa {
			out = append(out, w.GetKind()+" "+w.GetMeta().GetName())
		}
	}
	return out
}

// workloadSP is the service principal behind a ServiceAccount's workload
// identity annotation, if any.
func (e *evaluator) workloadSP(ns, name string) *secureauditv1.DirectoryServicePrincipal {
	sa, ok := e.s.ServiceAccount(ns, name)
	if !ok {
		return nil
	}
	cid, ok := sa.GetMeta().GetAnnotations()[annotationClientID]
	if !ok {
		return nil
	}
	return e.d.apps[lower(cid)]
}

// reach is directory.reach extended to ServiceAccounts with a workload
// identity: the service principal they act as.
func (e *evaluator) reach(sub *secureauditv1.Subject) []member {
	if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
		if sp := e.workloadSP(sub.GetNamespace(), sub.GetName()); sp != nil {
			return []member{{sp: sp}}
		}
		return nil
	}
	return e.d.reach(sub)
}

// grantVia is one bound group through which a person reaches the cluster.
type grantVia struct {
	group *secureauditv1.DirectoryGroup
	b     *binding
}

// bindings runs the per-binding rules: ENTRA-001, 002, 003, 008, 009, 010,
// 011, 012, and gathers ENTRA-007.
func (e *evaluator) bindings() {
	byPerson := map[string][]grantVia{}
	persons := map[string]member{}
	for _, b := range bindings(e.s) {
		sub := b.subject
		if strings.HasPrefix(sub.GetName(), "system:") {
			continue
		}
		ref := func() *secureauditv1.SubjectRef { return e.s.SubjectRef(sub) }
		isGroup := sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
		if isGroup && e.d.unresolved[unresolvedKey(secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, sub.GetName())] {
			detail := fmt.Sprintf("%s names group %s, which the directory does not hold.", b.text(), sub.GetName())
			e.add(DeletedGroup, 0, "", ref(), b.ref, b.scope(), detail, b.unbind(), bindingKey(b)...)
		}
		ms := e.reach(sub)
		for _, m := range ms {
			e.noteSP(m, b)
			if m.user == nil {
				continue
			}
			u := m.user
			key := append(bindingKey(b), lower(u.GetId()))
			if u.GetUserType() == secureauditv1.UserType_USER_TYPE_GUEST {
				sev, reason := e.guestSeverity(b)
				detail := fmt.Sprintf("%s reaches the cluster %s: %s.", person(m), m.via(), b.text())
				e.add(Guest, sev, reason, memberRef(m), b.ref, b.scope(), detail, removeMember(m, b), key...)
			}
			if !u.GetAccountEnabled() {
				detail := fmt.Sprintf("%s is disabled and still reaches the cluster %s: %s.", person(m), m.via(), b.text())
				e.add(Disabled, 0, "", memberRef(m), b.ref, b.scope(), detail, removeMember(m, b), key...)
			}
			if days, last, ok := e.staleDays(u); ok {
				detail := fmt.Sprintf("%s last signed in %s, %d days before the snapshot (threshold %d days), and reaches the cluster %s: %s.",
					person(m), last.UTC().Format(time.DateOnly), days, e.cfg.StaleDays, m.via(), b.text())
				e.add(Stale, 0, "", memberRef(m), b.ref, b.scope(), detail, removeMember(m, b), key...)
			}
			if isGroup {
				id := lower(u.GetId())
				persons[id] = m
				byPerson[id] = append(byPerson[id], grantVia{e.d.groups[lower(sub.GetName())], b})
			}
		}
		e.azurePaths(b, ms)
		e.pipelineSecrets(b, ms)
		if g, ok := e.d.groups[lower(sub.GetName())]; ok && isGroup {
			e.groupOwners(b, g)
			e.groupPeople(b, g, ms)
		}
	}
	e.manyGroups(persons, byPerson)
}

func bindingKey(b *binding) []string {
	return []string{b.ref.GetKind().String(), b.ref.GetNamespace(), b.ref.GetName(), b.subject.GetKind().String(), b.subject.GetNamespace(), b.subject.GetName()}
}

// guestSeverity raises a cluster-wide guest grant to critical.
func (e *evaluator) guestSeverity(b *binding) (secureauditv1.Severity, string) {
	if b.ref.GetNamespace() == "" {
		return secureauditv1.Severity_SEVERITY_CRITICAL, "base HIGH; cluster-wide: +1 -> CRITICAL"
	}
	return 0, ""
}

// staleDays reports how many whole days before the snapshot u last signed
// in, when that is more than the threshold, and when: the most recent of
// its interactive, non-interactive and successful sign-ins, so that an
// account is stale only when all three are older than the threshold
// (people using kubelogin sign in non-interactively). Unknown sign-ins are
// not stale.
func (e *evaluator) staleDays(u *secureauditv1.DirectoryUser) (int, time.Time, bool) {
	at := e.s.Header().GetCollectedAt()
	var last time.Time
	for _, t := range []*timestamppb.Timestamp{u.GetLastSignIn(), u.GetLastNonInteractiveSignIn(), u.GetLastSuccessfulSignIn()} {
		if t != nil && t.AsTime().After(last) {
			last = t.AsTime()
		}
	}
	if last.IsZero() || at == nil {
		return 0, last, false
	}
	days := int(at.AsTime().Sub(last) / (24 * time.Hour))
	return days, last, days > e.cfg.StaleDays
}

// adminRoles are the Azure roles that give cluster-admin credentials or
// control of role assignments.
var adminRoles = map[string]bool{
	"owner":                     true,
	"contributor":               true,
	"user access administrator": true,
	"azure kubernetes service cluster admin role": true,
	"azure kubernetes service rbac cluster admin": true,
	"azure kubernetes service rbac admin":         true,
	"azure kubernetes service contributor role":   true,
}

// adminRoute reports whether an assignment's role, whatever it is called,
// lists the admin credential, runs commands, reconfigures the cluster or
// writes role assignments (the routes the entra-agent read from its
// permissions).
func adminRoute(a *secureauditv1.AzureRoleAssignment) bool {
	return slices.ContainsFunc(a.GetRoutes(), func(r secureauditv1.AzureRoute) bool {
		switch r {
		case secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL, secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND,
			secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE, secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE:
			return true
		}
		return false
	})
}

// azurePaths: ENTRA-008, a bound principal (or a member of a bound group)
// with an Azure role assignment reaching the cluster.
func (e *evaluator) azurePaths(b *binding, ms []member) {
	type hit struct {
		who      string
		a        *secureauditv1.AzureRoleAssignment
		disabled bool
	}
	var hits []hit
	if b.subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP {
		for _, g := range e.groupsOf(b.subject) {
			for _, a := range e.d.assignments[lower(g.GetId())] {
				hits = append(hits, hit{who: "group " + groupName(g), a: a})
			}
		}
	}
	for _, m := range ms {
		for _, a := range e.d.assignments[m.id()] {
			hits = append(hits, hit{who: person(m), a: a, disabled: m.user != nil && !m.user.GetAccountEnabled()})
		}
	}
	if len(hits) == 0 {
		return
	}
	// A hit raises the finding only when it works today: a standing
	// assignment of an account that can sign in. An eligible one (PIM) is a
	// path once activated; a disabled account's is a path once re-enabled.
	// Both are reported, neither raises.
	admin, eligibleAdmin, standing := false, false, false
	parts := make([]string, len(hits))
	for i, h := range hits {
		isAdmin := adminRoles[lower(h.a.GetRoleName())] || adminRoute(h.a)
		disabled := h.disabled
		switch {
		case h.a.GetEligible():
			eligibleAdmin = eligibleAdmin || isAdmin
			parts[i] = fmt.Sprintf("%s is eligible (PIM, activation needed) for %q at %s", h.who, h.a.GetRoleName(), h.a.GetScope())
		case disabled:
			parts[i] = fmt.Sprintf("%s holds %q at %s (the account is disabled: no path until it is re-enabled)", h.who, h.a.GetRoleName(), h.a.GetScope())
		default:
			standing = true
			admin = admin || isAdmin
			parts[i] = fmt.Sprintf("%s holds %q at %s", h.who, h.a.GetRoleName(), h.a.GetScope())
		}
	}
	sev, reasons := ruleByID(AzurePath).Severity, []string{"base HIGH"}
	switch {
	case admin:
		sev, reasons = secureauditv1.Severity_SEVERITY_CRITICAL, append(reasons, "admin Azure role: -> CRITICAL")
	case !standing:
		if eligibleAdmin {
			reasons = append(reasons, "admin Azure role eligible only (PIM), or held by a disabled account: not raised")
		} else {
			reasons = append(reasons, "no standing assignment of an enabled account: not raised")
		}
	case b.subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		sev, reasons = secureauditv1.Severity_SEVERITY_CRITICAL, append(reasons, "group subject: -> CRITICAL")
	}
	detail := fmt.Sprintf("Besides %s: %s.", b.text(), strings.Join(parts, "; "))
	// The command removes the route that works today, if one does.
	fix := hits[0].a
	for _, h := range hits {
		if !h.a.GetEligible() && !h.disabled {
			fix = h.a
			break
		}
	}
	e.add(AzurePath, sev, strings.Join(reasons, "; "), e.s.SubjectRef(b.subject), b.ref, b.scope(), detail,
		access.RemoveCommand(fix), bindingKey(b)...)
}

// groupsOf lists the group a subject names and its nested groups.
func (e *evaluator) groupsOf(sub *secureauditv1.Subject) []*secureauditv1.DirectoryGroup {
	g, ok := e.d.groups[lower(sub.GetName())]
	if !ok {
		return nil
	}
	return e.d.nested(g)
}

// pipelineSecrets: ENTRA-009, CI/CD service principals with cluster access
// that hold secrets and no federated credential.
func (e *evaluator) pipelineSecrets(b *binding, ms []member) {
	for _, m := range ms {
		sp := m.sp
		if sp == nil || sp.GetPasswordCredentials()+sp.GetCertificateCredentials() == 0 || len(sp.GetFederatedCredentials()) > 0 {
			continue
		}
		if pipelineName(sp.GetDisplayName()) == "" && !pipelineAccount(b.subject) {
			continue
		}
		held := fmt.Sprintf("%d client secret(s)", sp.GetPasswordCredentials())
		if n := sp.GetCertificateCredentials(); n > 0 {
			held = fmt.Sprintf("%d client secret(s) and %d certificate(s)", sp.GetPasswordCredentials(), n)
		}
		detail := fmt.Sprintf("%s has %s and no federated credential, and reaches the cluster %s: %s.",
			person(m), held, m.via(), b.text())
		fix := fmt.Sprintf("az ad app federated-credential create --id %s --parameters <issuer, subject, audiences>; then az ad app credential delete --id %s --key-id <each secret> (add --cert for each certificate)", sp.GetAppId(), sp.GetAppId())
		e.add(PipelineSecret, 0, "", e.s.SubjectRef(b.subject), b.ref, b.scope(), detail, fix, append(bindingKey(b), m.id())...)
	}
}

// pipelineAccount reports whether a ServiceAccount subject is named like a
// pipeline identity.
func pipelineAccount(sub *secureauditv1.Subject) bool {
	return sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT && pipelineName(sub.GetName()) != ""
}

// groupOwners: ENTRA-011, bound groups (or groups nested in them) owned by
// a guest or a disabled account.
func (e *evaluator) groupOwners(b *binding, g *secureauditv1.DirectoryGroup) {
	var bad []string
	var fix string
	for _, ng := range e.d.nested(g) {
		for _, o := range e.d.owners(ng) {
			u := o.user
			if u == nil || (u.GetUserType() != secureauditv1.UserType_USER_TYPE_GUEST && u.GetAccountEnabled()) {
				continue
			}
			bad = append(bad, fmt.Sprintf("%s owns %s", person(o), groupName(ng)))
			if fix == "" {
				fix = fmt.Sprintf("az ad group owner remove --group %s --owner-object-id %s", ng.GetId(), u.GetId())
			}
		}
	}
	if len(bad) == 0 {
		return
	}
	detail := fmt.Sprintf("%s grants access to group %s: %s.", b.text(), groupName(g), strings.Join(bad, "; "))
	e.add(GroupOwner, 0, "", e.s.SubjectRef(b.subject), b.ref, b.scope(), detail, fix, bindingKey(b)...)
}

// groupPeople: ENTRA-012, the people behind every group binding.
func (e *evaluator) groupPeople(b *binding, g *secureauditv1.DirectoryGroup, ms []member) {
	var owners []member
	for _, ng := range e.d.nested(g) {
		for _, o := range e.d.owners(ng) {
			if !slices.ContainsFunc(owners, func(x member) bool { return x.id() == o.id() }) {
				owners = append(owners, o)
			}
		}
	}
	slices.SortFunc(owners, func(a, b member) int { return cmp.Compare(a.id(), b.id()) })
	nested := e.d.nested(g)
	detail := fmt.Sprintf("%s grants %s to group %s (%s)", b.text(), b.role, groupName(g), g.GetId())
	if len(nested) > 1 {
		names := make([]string, 0, len(nested)-1)
		for _, ng := range nested[1:] {
			names = append(names, groupName(ng))
		}
		detail += ", which nests " + strings.Join(names, ", ")
	}
	detail += fmt.Sprintf(". Members (%d): %s. Owners: %s.", len(ms), people(ms, true), people(owners, false))
	fix := fmt.Sprintf("az ad group member list --group %s --query \"[].userPrincipalName\"", g.GetId())
	e.add(GroupPeople, 0, "", e.s.SubjectRef(b.subject), b.ref, b.scope(), detail, fix, bindingKey(b)...)
}

// manyGroups: ENTRA-007, a person reaching the cluster through two or more
// bound groups.
func (e *evaluator) manyGroups(persons map[string]member, byPerson map[string][]grantVia) {
	ids := make([]string, 0, len(byPerson))
	for id := range byPerson {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		vias := byPerson[id]
		groups := map[string]bool{}
		var parts []string
		for _, v := range vias {
			groups[lower(v.group.GetId())] = true
			parts = append(parts, fmt.Sprintf("group %s via %s", groupName(v.group), v.b.text()))
		}
		if len(groups) < 2 {
			continue
		}
		m := persons[id]
		detail := fmt.Sprintf("%s reaches the cluster through %d groups: %s.", person(m), len(groups), strings.Join(parts, "; "))
		fix := fmt.Sprintf("az ad group member remove --group <redundant group> --member-id %s", m.id())
		e.add(ManyGroups, 0, "", memberRef(m), nil, clusterScope(), detail, fix, id)
	}
}

// pipelines: ENTRA-005, CI/CD identities among the subjects of cluster-admin
// (RBAC-001) and escalation (RBAC-009) findings.
func (e *evaluator) pipelines(rbac []*secureauditv1.Finding) {
	type key struct{ sub, binding string }
	done := map[key]bool{}
	for _, f := range rbac {
		if f.GetInfrastructure() || (f.GetRuleId() != rbacClusterAdmin && f.GetRuleId() != rbacEscalationVerbs) {
			continue
		}
		sub := &secureauditv1.Subject{Kind: f.GetSubject().GetKind(), Name: f.GetSubject().GetName(), Namespace: f.GetSubject().GetNamespace()}
		b := f.GetBinding()
		k := key{sub.GetKind().String() + "/" + sub.GetNamespace() + "/" + sub.GetName(), b.GetKind().String() + "/" + b.GetNamespace() + "/" + b.GetName()}
		if done[k] {
			continue
		}
		why := e.pipelineEvidence(sub)
		if len(why) == 0 {
			continue
		}
		done[k] = true
		grants := "cluster-admin or an equivalent wildcard"
		if f.GetRuleId() == rbacEscalationVerbs {
			grants = "privilege-escalation verbs"
		}
		bt := fmt.Sprintf("%s %s", strings.TrimPrefix(b.GetKind().String(), "BINDING_KIND_"), b.GetName())
		if b.GetNamespace() != "" {
			bt = fmt.Sprintf("RoleBinding %s/%s", b.GetNamespace(), b.GetName())
		} else if b.GetKind() == secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING {
			bt = "ClusterRoleBinding " + b.GetName()
		}
		detail := fmt.Sprintf("It is a CI/CD identity (%s) and holds %s through %s (%s).", strings.Join(why, "; "), grants, bt, f.GetRuleId())
		scope := proto.CloneOf(f.GetScope())
		fix := "kubectl delete clusterrolebinding " + b.GetName() + ", then bind a namespaced deploy role"
		if b.GetNamespace() != "" {
			fix = fmt.Sprintf("kubectl -n %s delete rolebinding %s, then bind a narrower role", b.GetNamespace(), b.GetName())
		}
		e.add(PipelineAdmin, 0, "", e.s.SubjectRef(sub), b, scope, detail, fix, k.sub, k.binding)
	}
}

// pipelineEvidence says why a subject is a CI/CD identity, or nothing.
func (e *evaluator) pipelineEvidence(sub *secureauditv1.Subject) []string {
	var why []string
	if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
		if w := pipelineName(sub.GetName()); w != "" {
			why = append(why, fmt.Sprintf("ServiceAccount name %q matches %q", sub.GetName(), w))
		}
	}
	for _, m := range e.reach(sub) {
		if m.sp == nil {
			continue
		}
		if w := pipelineName(m.sp.GetDisplayName()); w != "" && sub.GetKind() != secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			why = append(why, fmt.Sprintf("%s name matches %q", person(m), w))
		}
		for _, fc := range m.sp.GetFederatedCredentials() {
			if p := pipelineIssuer(fc); p != "" {
				why = append(why, fmt.Sprintf("%s trusts %s tokens for %s", person(m), p, fc.GetSubject()))
			}
		}
	}
	return why
}

// pipelineWords are name tokens that mark CI/CD identities.
var pipelineWords = []string{"ado", "argo", "argocd", "azdo", "buildkite", "cd", "ci", "cicd", "circleci", "deploy", "deployer", "devops", "flux", "github", "gitlab", "jenkins", "octopus", "pipeline", "pipelines", "spinnaker", "tekton", "terraform"}

// pipelineName returns the pipeline word a name contains as a token, or "".
func pipelineName(name string) string {
	tokens := strings.FieldsFunc(lower(name), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	for _, t := range tokens {
		if _, ok := slices.BinarySearch(pipelineWords, t); ok {
			return t
		}
	}
	return ""
}

// pipelineIssuer names the CI/CD system a federated credential trusts, or "".
func pipelineIssuer(fc *secureauditv1.FederatedCredential) string {
	iss, sub := lower(fc.GetIssuer()), fc.GetSubject()
	switch {
	case strings.HasPrefix(iss, "https://token.actions.githubusercontent.com"), strings.HasPrefix(sub, "repo:"):
		return "GitHub Actions"
	case strings.HasPrefix(iss, "https://gitlab."), strings.HasPrefix(sub, "project_path:"):
		return "GitLab CI"
	case strings.HasPrefix(iss, "https://vstoken.dev.azure.com"), strings.HasPrefix(sub, "sc://"):
		return "Azure DevOps"
	case strings.HasPrefix(iss, "https://app.terraform.io"):
		return "Terraform Cloud"
	}
	return ""
}

// Sort orders findings by severity, cluster before namespace scope,
// namespace, rule ID, subject, binding and ID: the order of rules.Sort.
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
			cmp.Compare(a.GetId(), b.GetId()),
		)
	})
}
