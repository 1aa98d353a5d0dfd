package registry

// identityRules are the identity rules (package identity): who a subject is,
// from the Entra ID directory. Their IDs are also constants of package
// identity (identity.Guest...).
var identityRules = []Rule{
	{
		ID: "ENTRA-001", Title: "binding to a group that no longer exists", Severity: medium,
		Rationale:   "The binding names an Entra group object ID the directory does not hold: the group was deleted (or belongs to another tenant). The binding grants nothing today, hides who once had access, and is evidence that access reviews do not reach the cluster.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Delete the binding, or rebind the role to the group that replaced the deleted one.",
	},
	{
		ID: "ENTRA-002", Title: "guest user with cluster access", Severity: high,
		Rationale:   "A guest (B2B) account from another organisation reaches the cluster, directly or through nested groups. Its credentials and lifecycle are managed by the other tenant.",
		Controls:    []string{"SOC2-CC6.2", "SOC2-CC6.3"},
		Remediation: "Remove the guest from the binding or group, or grant it time-bound access through a reviewed access package.",
	},
	{
		ID: "ENTRA-003", Title: "disabled account still bound", Severity: medium,
		Rationale:   "A disabled Entra account still holds cluster access. It cannot sign in today, but re-enabling it restores the access without review, and it shows that leavers are not removed from the cluster.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Remove the account from the binding or group.",
	},
	{
		ID: "ENTRA-004", Title: "workload identity without a managed identity or app", Severity: medium,
		Rationale:   "A ServiceAccount's azure.workload.identity/client-id names a client ID no service principal in the directory has: the managed identity or app registration was deleted, or the annotation is wrong. Pods using it fail to get tokens, and a stale trust is left behind.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Point the annotation at an existing identity or remove it.",
	},
	{
		ID: "ENTRA-005", Title: "CI/CD identity with cluster-admin or escalation rights", Severity: critical,
		Rationale:   "An identity used by a CI/CD pipeline (by its name, or by a federated credential issued to a pipeline such as GitHub Actions) holds cluster-admin, an equivalent wildcard, or privilege-escalation verbs. Whoever can change the pipeline or its repository owns the cluster.",
		Controls:    []string{"SOC2-CC6.3", "SOC2-CC6.8"},
		Remediation: "Bind the pipeline identity to a role limited to the namespaces and resources it deploys.",
	},
	{
		ID: "ENTRA-006", Title: "legacy AAD pod identity", Severity: medium,
		Rationale:   "A workload selects an identity through the deprecated AAD pod identity (aadpodidbinding label), whose node-level NMI lets any pod on the node request the identity's tokens unless carefully locked down.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Migrate the workload to Azure workload identity (a federated credential on the managed identity and the azure.workload.identity/client-id annotation).",
	},
	{
		ID: "ENTRA-007", Title: "person reaching the cluster through several groups", Severity: low,
		Rationale:   "A person reaches the cluster through two or more bound groups: removing them from one group does not remove their access, and reviews of any one group understate it.",
		Controls:    []string{"SOC2-CC6.2", "SOC2-CC6.3"},
		Remediation: "Keep one group per access level and remove the person from the redundant ones.",
	},
	{
		ID: "ENTRA-008", Title: "second path to the cluster through Azure RBAC", Severity: high,
		Rationale:   "A principal bound in Kubernetes also holds an Azure role assignment that reaches the cluster (AKS cluster admin/user credentials, AKS RBAC roles, or Owner, Contributor, User Access Administrator on the cluster, its resource group or subscription). Removing the Kubernetes binding does not remove its access.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Remove the Azure role assignment (an eligible one through an AdminRemove eligibility schedule request), or the Kubernetes binding, so that one reviewed path remains.",
	},
	{
		ID: "ENTRA-009", Title: "CI/CD service principal authenticating with a secret or certificate", Severity: high,
		Rationale:   "A CI/CD service principal with cluster access holds client secrets or certificates and no federated credential: a long-lived secret, or a certificate's private key, stored in the pipeline can be copied and used from anywhere.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Add a federated identity credential for the pipeline and delete the client secrets and certificates.",
	},
	{
		ID: "ENTRA-010", Title: "stale account with cluster access", Severity: medium,
		Rationale:   "An account that has not signed in for longer than the configured threshold still holds cluster access: its last interactive, non-interactive (kubelogin's token refreshes) and successful sign-ins are all older than the threshold.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Confirm the access is still needed; otherwise remove the account from the binding or group.",
	},
	{
		ID: "ENTRA-011", Title: "bound group owned by a guest or disabled account", Severity: medium,
		Rationale:   "A group that grants cluster access is owned by a guest or a disabled account. Owners add members, so whoever controls that account controls who reaches the cluster.",
		Controls:    []string{"SOC2-CC6.2", "SOC2-CC6.3"},
		Remediation: "Replace the owner with an active member of the team that reviews the group.",
	},
	{
		ID: "ENTRA-012", Title: "people behind a group binding", Severity: info,
		Rationale:   "The binding names an Entra group; these are the people and service principals it grants access to, through every level of nesting, and the group's owners.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Review the members and owners with the group's owner.",
	},
	{
		ID: "ENTRA-013", Title: "client secret or certificate hygiene of an identity with cluster access", Severity: medium,
		Rationale:   "An application or service principal that reaches the cluster (through a binding, a group, a workload identity, or a standing Azure role assignment of its own or of a group it is in, at any depth) holds a client secret or certificate that is past its end date and still configured (cleanup, LOW), expires within the expiry threshold (-credential-expiry-days, default 30: rotate, LOW), is a client secret older than the rotation threshold (-secret-max-age-days, default 180: MEDIUM), or is held beside a federated credential (HIGH: the secret or key works from anywhere, without the issuer the federation trusts). Only metadata is read: key ID, display name, start and end dates, never the secret or its hint. Managed identities are left out: Azure rotates their certificates.",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.2"},
		Remediation: "List the credentials, then delete the expired and superseded ones; rotate old secrets, or better replace them with a federated credential and delete every secret and certificate.",
	},
}
