package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// maxWorkloadRefs bounds Finding.workloads, as the contract does.
const maxWorkloadRefs = 32

// sharedNamespaces are the namespaces no operator owns: a ServiceAccount
// there that no workload runs as is not taken for a component's identity
// (an unrecognised ServiceAccount in kube-system is where an attacker
// persists), so its finding keeps the severity's action.
var sharedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// addonModeLabel is the add-on manager's label: Reconcile means the
// manager rewrites the object from its manifest and recreates it when
// deleted.
const addonModeLabel = "addonmanager.kubernetes.io/mode"

// Annotate sets on every finding what the report needs to list one entry
// per grant with an action that fits its subject: the grant key (the same
// for every hit of one subject, binding, role and scope), the workloads
// that run as a ServiceAccount subject, whether that subject is the
// workload identity of an installed component, whether that subject is
// missing from the snapshot (a latent grant), whether the API server
// rewrites the finding's role, and whether the add-on manager reconciles
// its binding. It is pure: the same snapshot and findings
// give the same annotations.
func Annotate(s *snapshot.Snapshot, findings []*secureauditv1.Finding) {
	runs := map[string][]*secureauditv1.WorkloadRef{}
	workloadNS := map[string]bool{}
	for _, w := range s.Workloads() {
		ns := w.GetMeta().GetNamespace()
		workloadNS[ns] = true
		k := snapshot.Key(ns, w.GetServiceAccount())
		runs[k] = append(runs[k], &secureauditv1.WorkloadRef{Kind: w.GetKind(), Namespace: ns, Name: w.GetMeta().GetName(), Images: w.GetImages()})
	}
	// Namespaces whose ServiceAccounts the snapshot holds: only there can a
	// ServiceAccount be said to be missing.
	hasSAs := map[string]bool{}
	for _, sa := range s.ServiceAccounts() {
		hasSAs[sa.GetMeta().GetNamespace()] = true
	}
	// Bindings the add-on manager reconciles (Finding.binding_reconciled).
	addonManaged := map[string]bool{}
	for _, b := range s.ClusterRoleBindings() {
		if b.GetMeta().GetLabels()[addonModeLabel] == "Reconcile" {
			addonManaged[snapshot.Key("", b.GetMeta().GetName())] = true
		}
	}
	for _, b := range s.RoleBindings() {
		if b.GetMeta().GetLabels()[addonModeLabel] == "Reconcile" {
			addonManaged[snapshot.Key(b.GetMeta().GetNamespace(), b.GetMeta().GetName())] = true
		}
	}
	for _, refs := range runs {
		sort.Slice(refs, func(i, j int) bool {
			if refs[i].GetKind() != refs[j].GetKind() {
				return refs[i].GetKind() < refs[j].GetKind()
			}
			return refs[i].GetName() < refs[j].GetName()
		})
	}
	for _, f := range findings {
		if f.GrantKey == "" { // one set by its rule (a grant through Azure) is kept
			f.GrantKey = GrantKey(f)
		}
		f.RoleReconciled = reconciled(s, f.GetRole())
		if b := f.GetBinding(); b.GetName() != "" {
			ns := b.GetNamespace()
			if b.GetKind() == secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING {
				ns = ""
			}
			f.BindingReconciled = addonManaged[snapshot.Key(ns, b.GetName())]
		}
		sub := f.GetSubject()
		if sub.GetKind() != secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			continue
		}
		refs := runs[snapshot.Key(sub.GetNamespace(), sub.GetName())]
		f.Workloads = nil
		for _, r := range refs[:min(len(refs), maxWorkloadRefs)] {
			f.Workloads = append(f.Workloads, &secureauditv1.WorkloadRef{Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(),
				Images: append([]string(nil), r.GetImages()...)})
		}
		ns := sub.GetNamespace()
		f.Component = len(refs) > 0 || (workloadNS[ns] && !sharedNamespaces[ns])
		_, exists := s.ServiceAccount(ns, sub.GetName())
		f.SubjectMissing = !exists && hasSAs[ns] && sub.GetName() != "default"
	}
}

// GrantKey is the key of the grant a finding is about: the first 16 hex
// digits of the SHA-256 of its subject, binding, role and scope, each as
// kind/namespace/name. A finding about a role alone (no subject, no
// binding) is keyed by the role.
func GrantKey(f *secureauditv1.Finding) string {
	h := sha256.New()
	var buf []byte
	part := func(ss ...string) {
		for i, x := range ss {
			if i > 0 {
				buf = append(buf, '/')
			}
			buf = append(buf, x...)
		}
		buf = append(buf, 0)
	}
	sub, b, r, sc := f.GetSubject(), f.GetBinding(), f.GetRole(), f.GetScope()
	part(sub.GetKind().String(), sub.GetNamespace(), sub.GetName())
	part(b.GetKind().String(), b.GetNamespace(), b.GetName())
	part(r.GetKind().String(), r.GetNamespace(), r.GetName())
	part(sc.GetLevel().String(), sc.GetNamespace())
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// reconciled reports whether the API server rewrites a role: a ClusterRole
// with an aggregationRule (the aggregation controller replaces its rules)
// or a ClusterRole of the bootstrap policy (reconciled at every start).
func reconciled(s *snapshot.Snapshot, r *secureauditv1.FindingRole) bool {
	if r.GetKind() != secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE || r.GetName() == "" {
		return false
	}
	if cr, ok := s.ClusterRole(r.GetName()); ok && len(cr.GetAggregationSelectors()) > 0 {
		return true
	}
	_, ok := bootstrap().effective[r.GetName()]
	return ok
}
