// Package identity is the risk-agent's identity rule catalogue: pure
// functions over an immutable RBAC snapshot, the directory objects the
// entra-agent resolved for it and the RBAC findings, that turn who the
// principals are (guests, disabled or stale accounts, deleted groups, CI/CD
// identities, workload identities, second paths through Azure RBAC) into
// findings with stable ENTRA-* rule IDs. No I/O, no clock, no randomness:
// "now" is the snapshot's collection time.
package identity

import (
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Rule IDs. They are stable: reports and tests depend on them.
const (
	DeletedGroup      = "ENTRA-001" // E1
	Guest             = "ENTRA-002" // E2
	Disabled          = "ENTRA-003" // E3
	MissingWorkloadID = "ENTRA-004" // E4
	PipelineAdmin     = "ENTRA-005" // E5
	PodIdentity       = "ENTRA-006" // E6
	ManyGroups        = "ENTRA-007" // E7
	AzurePath         = "ENTRA-008" // E8
	PipelineSecret    = "ENTRA-009" // E9
	Stale             = "ENTRA-010"
	GroupOwner        = "ENTRA-011"
	GroupPeople       = "ENTRA-012"
)

// RBAC rule IDs the identity rules read (see package rules; the IDs are
// stable contracts, so they are not imported).
const (
	rbacClusterAdmin    = "RBAC-001"
	rbacEscalationVerbs = "RBAC-009"
)

// Rule describes one rule of the catalogue.
type Rule struct {
	// ID is the stable rule ID, such as ENTRA-002.
	ID string
	// Title is a one-line name for the finding.
	Title string
	// Severity is the base severity before escalation.
	Severity secureauditv1.Severity
	// Description is the rationale: why the pattern matters.
	Description string
	// Controls are the control IDs the rule maps to (SOC2-...).
	Controls []string
	// Remediation is the general advice; findings add the exact command.
	Remediation string
}

var catalogue = []Rule{
	{
		ID: DeletedGroup, Title: "binding to a group that no longer exists", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "The binding names an Entra group object ID the directory does not hold: the group was deleted (or belongs to another tenant). The binding grants nothing today, hides who once had access, and is evidence that access reviews do not reach the cluster.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Delete the binding, or rebind the role to the group that replaced the deleted one.",
	},
	{
		ID: Guest, Title: "guest user with cluster access", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "A guest (B2B) account from another organisation reaches the cluster, directly or through nested groups. Its credentials and lifecycle are managed by the other tenant.",
		Controls:    []string{"SOC2-CC6.2", "SOC2-CC6.3"},
		Remediation: "Remove the guest from the binding or group, or grant it time-bound access through a reviewed access package.",
	},
	{
		ID: Disabled, Title: "disabled account still bound", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "A disabled Entra account still holds cluster access. It cannot sign in today, but re-enabling it restores the access without review, and it shows that leavers are not removed from the cluster.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Remove the account from the binding or group.",
	},
	{
		ID: MissingWorkloadID, Title: "workload identity without a managed identity or app", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "A ServiceAccount's azure.workload.identity/client-id names a client ID no service principal in the directory has: the managed identity or app registration was deleted, or the annotation is wrong. Pods using it fail to get tokens, and a stale trust is left behind.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Point the annotation at an existing identity or remove it.",
	},
	{
		ID: PipelineAdmin, Title: "CI/CD identity with cluster-admin or escalation rights", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
		Description: "An identity used by a CI/CD pipeline (by its name, or by a federated credential issued to a pipeline such as GitHub Actions) holds cluster-admin, an equivalent wildcard, or privilege-escalation verbs. Whoever can change the pipeline or its repository owns the cluster.",
		Controls:    []string{"SOC2-CC6.3", "SOC2-CC6.8"},
		Remediation: "Bind the pipeline identity to a role limited to the namespaces and resources it deploys.",
	},
	{
		ID: PodIdentity, Title: "legacy AAD pod identity", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "A workload selects an identity through the deprecated AAD pod identity (aadpodidbinding label), whose node-level NMI lets any pod on the node request the identity's tokens unless carefully locked down.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Migrate the workload to Azure workload identity (a federated credential on the managed identity and the azure.workload.identity/client-id annotation).",
	},
	{
		ID: ManyGroups, Title: "person reaching the cluster through several groups", Severity: secureauditv1.Severity_SEVERITY_LOW,
		Description: "A person reaches the cluster through two or more bound groups: removing them from one group does not remove their access, and reviews of any one group understate it.",
		Controls:    []string{"SOC2-CC6.2", "SOC2-CC6.3"},
		Remediation: "Keep one group per access level and remove the person from the redundant ones.",
	},
	{
		ID: AzurePath, Title: "second path to the cluster through Azure RBAC", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "A principal bound in Kubernetes also holds an Azure role assignment that reaches the cluster (AKS cluster admin/user credentials, AKS RBAC roles, or Owner, Contributor, User Access Administrator on the cluster, its resource group or subscription). Removing the Kubernetes binding does not remove its access.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Remove the Azure role assignment, or the Kubernetes binding, so that one reviewed path remains.",
	},
	{
		ID: PipelineSecret, Title: "CI/CD service principal authenticating with a secret", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		Description: "A CI/CD service principal with cluster access holds client secrets and no federated credential: a long-lived secret stored in the pipeline can be copied and used from anywhere.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Add a federated identity credential for the pipeline and delete the client secrets.",
	},
	{
		ID: Stale, Title: "stale account with cluster access", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "An account that has not signed in for longer than the configured threshold still holds cluster access: its last interactive, non-interactive (kubelogin's token refreshes) and successful sign-ins are all older than the threshold.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Confirm the access is still needed; otherwise remove the account from the binding or group.",
	},
	{
		ID: GroupOwner, Title: "bound group owned by a guest or disabled account", Severity: secureauditv1.Severity_SEVERITY_MEDIUM,
		Description: "A group that grants cluster access is owned by a guest or a disabled account. Owners add members, so whoever controls that account controls who reaches the cluster.",
		Controls:    []string{"SOC2-CC6.2", "SOC2-CC6.3"},
		Remediation: "Replace the owner with an active member of the team that reviews the group.",
	},
	{
		ID: GroupPeople, Title: "people behind a group binding", Severity: secureauditv1.Severity_SEVERITY_INFO,
		Description: "The binding names an Entra group; these are the people and service principals it grants access to, through every level of nesting, and the group's owners.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Review the members and owners with the group's owner.",
	},
}

// Catalogue returns the identity rules, ordered by ID. The result is a copy.
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
	panic("identity: unknown rule " + id) // programming error: IDs are constants
}
