package inject

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// Control is the control every injection rule maps to (each rule's
// registry entry says so).
const Control = "SOC2-CC7.2"

// Source names the workload in anomaly events.
const Source = "risk-agent"

// Detection is one injection hit in one field of one object.
type Detection struct {
	Hit
	// Object names the object, such as ClusterRoleBinding/platform-admins.
	Object string
	// Field names the field, such as annotations[note] or displayName.
	Field string
	// Finding is the security finding the detection became.
	Finding *secureauditv1.Finding
}

// surface is one attacker-controllable string of one object.
type surface struct {
	kind, namespace, name string
	field, key            string
	value                 string
	// ref fills the finding's references to the object.
	ref func(f *secureauditv1.Finding)
}

// Inspect scans every string that came from the cluster or the directory and
// returns one detection, with its finding, per category and field hit. The
// result is sorted and deterministic.
func Inspect(snap *snapshot.Snapshot, dir []*secureauditv1.DirectoryChunk) []Detection {
	var out []Detection
	for _, s := range surfaces(snap, dir) {
		for _, h := range Scan(s.value) {
			out = append(out, Detection{Hit: h, Object: s.object(), Field: s.fieldName(), Finding: s.finding(h)})
		}
	}
	slices.SortFunc(out, func(a, b Detection) int {
		return strings.Compare(a.Finding.GetId(), b.Finding.GetId())
	})
	return slices.CompactFunc(out, func(a, b Detection) bool { return a.Finding.GetId() == b.Finding.GetId() })
}

func (s surface) object() string {
	if s.namespace != "" {
		return s.kind + "/" + s.namespace + "/" + s.name
	}
	return s.kind + "/" + s.name
}

func (s surface) fieldName() string {
	if s.key != "" {
		return s.field + "[" + s.key + "]"
	}
	return s.field
}

// excerpt is a safe, bounded rendering of untrusted text for a report: ASCII
// only, with escapes for everything else.
func excerpt(v string, n int) string {
	q := strconv.QuoteToASCII(v)
	if len(q) > n {
		q = q[:n] + "...\""
	}
	return q
}

func (s surface) finding(h Hit) *secureauditv1.Finding {
	sum := sha256.New()
	for _, part := range []string{h.Category.RuleID(), s.kind, s.namespace, s.name, s.field, s.key} {
		sum.Write([]byte(part))
		sum.Write([]byte{0})
	}
	scope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	if s.namespace != "" {
		scope = &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: s.namespace}
	}
	object := excerpt(s.object(), 200)
	f := h.Category.rule().Finding(registry.Hit{
		ID:             hex.EncodeToString(sum.Sum(nil)[:8]),
		SeverityReason: "base severity of the rule: text addressed to a language model was planted in data the audit reads",
		Scope:          scope,
		Description: fmt.Sprintf("%s field %s holds text that looks written to steer a language model (%s: %s). "+
			"Someone able to write this object tried to influence automated review. The string was withheld from every prompt. Excerpt: %s",
			object, excerpt(s.fieldName(), 200), h.Category, h.Reason, excerpt(s.value, 300)),
		Remediation: s.remediation(),
	})
	if s.ref != nil {
		s.ref(f)
	}
	return f
}

// rule is the category's rule: its entry in the registry
// (services/risk-agent/registry/inject.go), which gives the finding its
// title, base severity and control. A category added without an entry is a
// programming error that TestCategoriesRegistered and the fixture tests
// report; until it is fixed the category's hits still become well-formed
// findings (HIGH, SOC2-CC7.2) rather than stopping the audit.
func (c Category) rule() registry.Rule {
	if r, ok := registry.Lookup(c.RuleID()); ok {
		return r
	}
	return registry.Rule{
		ID: c.RuleID(), Family: registry.Injection, Title: "possible prompt injection: " + c.String(),
		Severity: secureauditv1.Severity_SEVERITY_HIGH, Controls: []string{Control},
		Rationale:   "Text addressed to a language model was planted in data the audit reads.",
		Remediation: "Remove the text from the object or the directory attribute.",
	}
}

func (s surface) remediation() string {
	find := " Then find who wrote it: search the API server audit log (or the Entra ID audit log) for changes to this object."
	ns := ""
	if s.namespace != "" {
		ns = " -n " + s.namespace
	}
	kind := strings.ToLower(s.kind)
	switch s.field {
	case "annotations":
		return fmt.Sprintf("Remove the annotation: kubectl annotate %s %s%s %s-.%s", kind, s.name, ns, s.key, find)
	case "labels":
		return fmt.Sprintf("Remove the label: kubectl label %s %s%s %s-.%s", kind, s.name, ns, s.key, find)
	}
	return "Rename or remove the object, or correct the directory attribute, so that no instruction-like text remains." + find
}

func metaSurfaces(kind string, m *secureauditv1.ObjectMeta, ref func(*secureauditv1.Finding)) []surface {
	base := surface{kind: kind, namespace: m.GetNamespace(), name: m.GetName(), ref: ref}
	out := []surface{}
	add := func(field, key, value string) {
		s := base
		s.field, s.key, s.value = field, key, value
		out = append(out, s)
	}
	add("name", "", m.GetName())
	for _, k := range sortedKeys(m.GetLabels()) {
		add("labels", k, k+"="+m.GetLabels()[k])
	}
	for _, k := range sortedKeys(m.GetAnnotations()) {
		add("annotations", k, k+": "+m.GetAnnotations()[k])
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func bindingRef(kind secureauditv1.BindingKind, m *secureauditv1.ObjectMeta) func(*secureauditv1.Finding) {
	return func(f *secureauditv1.Finding) {
		f.Binding = &secureauditv1.BindingRef{Kind: kind, Name: m.GetName(), Namespace: m.GetNamespace()}
	}
}

func roleRef(kind secureauditv1.RoleKind, m *secureauditv1.ObjectMeta) func(*secureauditv1.Finding) {
	return func(f *secureauditv1.Finding) {
		f.Role = &secureauditv1.FindingRole{Kind: kind, Name: m.GetName(), Namespace: m.GetNamespace()}
	}
}

func subjectRef(kind secureauditv1.SubjectKind, name, namespace string) func(*secureauditv1.Finding) {
	return func(f *secureauditv1.Finding) {
		if name == "" {
			return
		}
		f.Subject = &secureauditv1.SubjectRef{Kind: kind, Name: name, Namespace: namespace}
	}
}

func subjectSurfaces(kind string, m *secureauditv1.ObjectMeta, subjects []*secureauditv1.Subject, ref func(*secureauditv1.Finding)) []surface {
	var out []surface
	for i, sub := range subjects {
		sref := subjectRef(sub.GetKind(), sub.GetName(), sub.GetNamespace())
		out = append(out, surface{
			kind: kind, namespace: m.GetNamespace(), name: m.GetName(),
			field: fmt.Sprintf("subjects[%d].name", i), value: sub.GetName(),
			ref: func(f *secureauditv1.Finding) { ref(f); sref(f) },
		})
	}
	return out
}

func surfaces(snap *snapshot.Snapshot, dir []*secureauditv1.DirectoryChunk) []surface {
	var out []surface
	for _, o := range snap.Namespaces() {
		out = append(out, metaSurfaces("Namespace", o.GetMeta(), nil)...)
	}
	for _, o := range snap.Roles() {
		out = append(out, metaSurfaces("Role", o.GetMeta(), roleRef(secureauditv1.RoleKind_ROLE_KIND_ROLE, o.GetMeta()))...)
	}
	for _, o := range snap.ClusterRoles() {
		out = append(out, metaSurfaces("ClusterRole", o.GetMeta(), roleRef(secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, o.GetMeta()))...)
	}
	for _, o := range snap.RoleBindings() {
		ref := bindingRef(secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, o.GetMeta())
		out = append(out, metaSurfaces("RoleBinding", o.GetMeta(), ref)...)
		out = append(out, subjectSurfaces("RoleBinding", o.GetMeta(), o.GetSubjects(), ref)...)
	}
	for _, o := range snap.ClusterRoleBindings() {
		ref := bindingRef(secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, o.GetMeta())
		out = append(out, metaSurfaces("ClusterRoleBinding", o.GetMeta(), ref)...)
		out = append(out, subjectSurfaces("ClusterRoleBinding", o.GetMeta(), o.GetSubjects(), ref)...)
	}
	for _, o := range snap.ServiceAccounts() {
		m := o.GetMeta()
		out = append(out, metaSurfaces("ServiceAccount", m, subjectRef(secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, m.GetName(), m.GetNamespace()))...)
	}
	for _, o := range snap.Workloads() {
		out = append(out, metaSurfaces(o.GetKind(), o.GetMeta(), nil)...)
	}
	for _, c := range dir {
		for _, u := range c.GetUsers() {
			ref := subjectRef(secureauditv1.SubjectKind_SUBJECT_KIND_USER, u.GetUserPrincipalName(), "")
			for _, f := range []struct{ field, value string }{
				{"userPrincipalName", u.GetUserPrincipalName()},
				{"displayName", u.GetDisplayName()},
			} {
				out = append(out, surface{kind: "EntraUser", name: u.GetId(), field: f.field, value: f.value, ref: ref})
			}
		}
		for _, g := range c.GetGroups() {
			ref := subjectRef(secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, g.GetId(), "")
			for _, f := range []struct{ field, value string }{
				{"displayName", g.GetDisplayName()},
				{"description", g.GetDescription()},
			} {
				out = append(out, surface{kind: "EntraGroup", name: g.GetId(), field: f.field, value: f.value, ref: ref})
			}
		}
		for _, sp := range c.GetServicePrincipals() {
			out = append(out, surface{kind: "EntraServicePrincipal", name: sp.GetId(), field: "displayName", value: sp.GetDisplayName()})
		}
	}
	return out
}

// Anomaly returns the CC7.2 anomaly event of a detection.
func (d Detection) Anomaly(auditID string) *secureauditv1.Anomaly {
	return &secureauditv1.Anomaly{
		Kind:    secureauditv1.AnomalyKind_ANOMALY_KIND_INJECTION,
		AuditId: auditID,
		Source:  Source,
		Summary: fmt.Sprintf("%s %s in %s %s", d.Category.RuleID(), d.Category, excerpt(d.Object, 300), excerpt(d.Field, 200)),
		Evidence: map[string]string{
			"rule_id":    d.Category.RuleID(),
			"finding_id": d.Finding.GetId(),
			"object":     excerpt(d.Object, 1000),
			"field":      excerpt(d.Field, 1000),
			"reason":     d.Reason,
			"withheld":   "true",
		},
	}
}
