// Package rules is the risk-agent's deterministic rule catalogue: pure
// functions over an immutable snapshot (no I/O, no clock, no randomness) that
// turn RBAC grants into findings with stable rule IDs, severities and the
// reason for them, control mappings and remediation commands. The same
// snapshot always yields the same findings in the same order.
package rules

import (
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// CatalogueVersion identifies this rule catalogue; it changes whenever a
// rule's semantics, severity or text changes.
const CatalogueVersion = "2026.11.1"

// Rule IDs. They are stable: other agents, reports and tests depend on them.
const (
	ClusterAdmin     = "RBAC-001"
	AdminEditCluster = "RBAC-002"
	SecretsRead      = "RBAC-003"
	Wildcard         = "RBAC-004"
	PodCreate        = "RBAC-005"
	PodExec          = "RBAC-006"
	DefaultSA        = "RBAC-007"
	SystemMasters    = "RBAC-008"
	EscalationVerbs  = "RBAC-009"
	DanglingBinding  = "RBAC-010"
)

// Rule describes one rule of the catalogue.
type Rule struct {
	// ID is the stable rule ID, such as RBAC-003.
	ID string
	// Title is a one-line name for the finding.
	Title string
	// Severity is the base severity before escalation.
	Severity secureauditv1.Severity
	// Description is the rationale: why the pattern matters.
	Description string
	// Controls are the control IDs the rule maps to (CIS-..., SOC2-...).
	Controls []string
	// Remediation is the general advice; findings add the exact command.
	Remediation string
}

var catalogue = []Rule{
	{
		ID: ClusterAdmin, Title: "cluster-admin or equivalent bound", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
		Description: "The subject is bound to cluster-admin or to a role granting every verb on every resource in every API group: full control of the cluster (through a ClusterRoleBinding) or of the namespace (through a RoleBinding).",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.3"},
		Remediation: "Remove the binding and grant a role limited to what the subject needs.",
	},
	{
		ID: AdminEditCluster, Title: "admin or edit bound cluster-wide", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "A ClusterRoleBinding grants the admin or edit ClusterRole in every namespace: write access to workloads and secrets everywhere.",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.3"},
		Remediation: "Replace the ClusterRoleBinding with RoleBindings in the namespaces the subject works in.",
	},
	{
		ID: SecretsRead, Title: "secrets readable", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "The subject can get, list or watch Secrets, which hold credentials and (legacy) ServiceAccount tokens.",
		Controls:    []string{"CIS-5.1.2", "SOC2-CC6.1"},
		Remediation: "Drop get, list and watch on secrets from the role, or restrict them with resourceNames.",
	},
	{
		ID: Wildcard, Title: "wildcard in a bound role", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "A bound role uses '*' in verbs, resources or apiGroups, which also grants every verb, resource or API added later.",
		Controls:    []string{"CIS-5.1.3", "SOC2-CC6.3"},
		Remediation: "Replace the wildcards with the explicit verbs, resources and API groups needed.",
	},
	{
		ID: PodCreate, Title: "pods creatable", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "The subject can create pods, and so run code as any ServiceAccount of the namespace, mount host paths or run privileged containers unless admission prevents it.",
		Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
		Remediation: "Drop create on pods from the role; let a controller create pods instead.",
	},
	{
		ID: PodExec, Title: "exec or attach into pods", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "The subject can exec or attach into running pods (create, or get through a websocket upgrade on older API servers): a shell inside, and the pod's ServiceAccount token.",
		Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
		Remediation: "Drop create and get on pods/exec and pods/attach from the role.",
	},
	{
		ID: DefaultSA, Title: "default ServiceAccount bound", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "A role is bound to a namespace's default ServiceAccount, which every pod without an explicit ServiceAccount runs as: the grant reaches all of them.",
		Controls:    []string{"CIS-5.1.5", "SOC2-CC6.3"},
		Remediation: "Create a dedicated ServiceAccount for the workload that needs the role and bind that instead.",
	},
	{
		ID: SystemMasters, Title: "system:masters bound", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
		Description: "A binding names the group system:masters, whose members bypass RBAC entirely; their access cannot be revoked through RBAC.",
		Controls:    []string{"CIS-5.1.7", "SOC2-CC6.3"},
		Remediation: "Remove system:masters from the binding; it is meaningless to RBAC and signals a misunderstanding.",
	},
	{
		ID: EscalationVerbs, Title: "privilege escalation verbs", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "The subject holds bind or escalate on roles or clusterroles, or impersonate on users, groups or serviceaccounts, each of which lets it obtain permissions it does not hold.",
		Controls:    []string{"CIS-5.1.8", "SOC2-CC6.3"},
		Remediation: "Drop bind, escalate and impersonate from the role.",
	},
	{
		ID: DanglingBinding, Title: "binding to a missing role", Severity: secureauditv1.Severity_SEVERITY_LOW,
		Description: "The binding references a role that does not exist. It grants nothing today, but revives the moment a role of that name is created.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Delete the binding, or create the intended role deliberately.",
	},
}

// Catalogue returns the rules, ordered by ID. The result is a copy.
func Catalogue() []Rule {
	out := make([]Rule, len(catalogue))
	for i, r := range catalogue {
		r.Controls = append([]string(nil), r.Controls...)
		out[i] = r
	}
	return out
}

func ruleByID(id string) Rule {
	for _, r := range catalogue {
		if r.ID == id {
			return r
		}
	}
	panic("rules: unknown rule " + id) // programming error: IDs are constants
}
