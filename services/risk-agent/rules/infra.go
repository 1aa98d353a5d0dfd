package rules

import (
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Infrastructure reports whether a finding about subject, granted through the
// binding named bindingName, belongs in the infrastructure appendix rather
// than the main findings: whether the subject is platform-managed. This is
// the only place that decides it.
//
//   - Users and groups named "system:*" or "aks:*" are platform-managed,
//     except the identities that stand for people or for every workload and
//     must stay in the main findings: system:masters, system:anonymous,
//     system:unauthenticated, system:authenticated and system:serviceaccounts
//     (with or without ":<namespace>").
//   - A user named "system:serviceaccount:<ns>:<name>" is that ServiceAccount
//     and is judged as one.
//   - The user aks-support is AKS's own support identity, bound by the
//     managed aks-service-rolebinding; it is platform-managed.
//   - ServiceAccounts in kube-system are platform-managed; ServiceAccounts
//     elsewhere are not.
//   - A binding whose name starts with "system:" or "aks" is platform-managed
//     only together with such a subject: the binding's name alone never moves
//     a finding out of the main report, because anyone can name a binding so.
//     With the rules above this adds no case of its own; it is stated so that
//     nobody "simplifies" it into a name check.
func Infrastructure(bindingName string, subject *secureauditv1.Subject) bool {
	_ = bindingName // see the last point above
	name := subject.GetName()
	switch subject.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return subject.GetNamespace() == "kube-system"
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER, secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		if rest, ok := strings.CutPrefix(name, "system:serviceaccount:"); ok {
			ns, _, _ := strings.Cut(rest, ":")
			return ns == "kube-system"
		}
		switch {
		case name == "system:masters", name == "system:anonymous",
			name == "system:unauthenticated", name == "system:authenticated",
			name == "system:serviceaccounts", strings.HasPrefix(name, "system:serviceaccounts:"):
			return false
		}
		if subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_USER && name == "aks-support" {
			return true
		}
		return strings.HasPrefix(name, "system:") || strings.HasPrefix(name, "aks:")
	}
	return false
}
