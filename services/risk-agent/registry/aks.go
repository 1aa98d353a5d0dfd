package registry

// aksRules are the rules on the AKS cluster's own access configuration and
// the routes into it through Azure (package aks), read by the entra-agent
// from Azure Resource Manager. The CIS items are the CIS Azure Kubernetes
// Service Benchmark's (CIS-AKS-...).
var aksRules = []Rule{
	{
		ID: "AKS-001", Title: "AKS local accounts enabled", Severity: high,
		Rationale:   "Local accounts are enabled: whoever may call listClusterAdminCredential (Owner, Contributor, Azure Kubernetes Service Cluster Admin Role, or any role with that action, at the cluster or above) gets a kubeconfig with a client certificate in system:masters. It bypasses Entra ID, Conditional Access and every binding, is not tied to a person, and cannot be revoked short of rotating the cluster's certificates.",
		Controls:    []string{"CIS-AKS-5.5.1", "SOC2-CC6.1", "SOC2-CC6.2"},
		Remediation: "Disable local accounts so that every access goes through Entra ID; keep a break-glass path through an admin group instead.",
	},
	{
		ID: "AKS-002", Title: "AKS cluster without Microsoft Entra integration", Severity: high,
		Rationale:   "The cluster does not use managed Microsoft Entra integration: users authenticate with certificates or tokens the cluster issues, outside the directory, so leavers, guests and MFA are not governed by Entra ID and the access review cannot name the people behind a kubeconfig.",
		Controls:    []string{"CIS-AKS-5.5.1", "SOC2-CC6.1", "SOC2-CC6.2"},
		Remediation: "Enable managed Entra integration with an admin group, then disable local accounts.",
	},
	{
		ID: "AKS-003", Title: "Azure RBAC for Kubernetes authorization disabled", Severity: medium,
		Rationale:   "Kubernetes permissions are managed only through in-cluster bindings: they are invisible to Azure's access reviews and Privileged Identity Management, and granting or removing a person's access means editing the cluster rather than a reviewed role assignment.",
		Controls:    []string{"CIS-AKS-5.5.2", "SOC2-CC6.3"},
		Remediation: "Enable Azure RBAC for Kubernetes authorization and move people's access to role assignments at the cluster or namespace scope.",
	},
	{
		ID: "AKS-004", Title: "public API server without authorized IP ranges", Severity: medium,
		Rationale:   "The API server is reachable from the whole internet: it is not a private cluster and no authorized IP ranges restrict it (a range of 0.0.0.0/0 restricts nothing). A leaked kubeconfig or admin certificate works from anywhere, and the API server is exposed to every unauthenticated probe.",
		Controls:    []string{"CIS-AKS-5.4.1", "CIS-AKS-5.4.2", "SOC2-CC6.6"},
		Remediation: "Restrict the API server to the networks that administer the cluster with authorized IP ranges, or make it a private cluster.",
	},
	{
		ID: "AKS-005", Title: "legacy AAD pod identity add-on enabled", Severity: medium,
		Rationale:   "The deprecated AAD pod identity add-on is enabled: its node-level NMI intercepts the instance metadata endpoint, so any pod on a node can obtain the tokens of identities assigned to the node pool unless exceptions and bindings are locked down. It is no longer supported.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Migrate workloads to Azure workload identity, then disable the pod identity add-on.",
	},
	{
		ID: "AKS-006", Title: "workload identity not enabled", Severity: low,
		Rationale:   "The OIDC issuer or workload identity is not enabled: workloads cannot exchange their ServiceAccount tokens for Entra tokens, so they fall back to client secrets in Kubernetes Secrets or to node-wide managed identities.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Enable the OIDC issuer and workload identity, and federate each workload's managed identity with its ServiceAccount.",
	},
	{
		ID: "AKS-007", Title: "Kubernetes RBAC disabled", Severity: critical,
		Rationale:   "The cluster was created without Kubernetes RBAC: every authenticated identity is authorized for everything, so no binding, role or review limits access.",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Kubernetes RBAC cannot be enabled on an existing AKS cluster: create a new cluster with RBAC and Entra integration and move the workloads.",
	},
	{
		ID: "AKS-008", Title: "cluster-admin through Azure", Severity: high,
		Rationale:   "A user, group or service principal (an application or managed identity) is cluster-admin through Azure, outside any Kubernetes binding (removing its bindings leaves the access): as a member of the cluster's admin group, through a role that lists the admin credential or runs commands while local accounts are enabled (Owner and Contributor at the cluster, its resource group or subscription included, whatever the role is called), or through Azure RBAC data actions on every Kubernetes resource. Reviews of the cluster's bindings miss it.",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.3"},
		Remediation: "Remove the role assignment or the group membership, or disable local accounts; grant Kubernetes access through a reviewed, namespace-scoped Azure RBAC role instead.",
	},
	{
		ID: "AKS-009", Title: "standing cluster-admin through Azure where PIM eligibility would do", Severity: medium,
		Rationale:   "A person, or a group of people, holds cluster-admin through Azure permanently: an active role assignment (not a Privileged Identity Management activation) whose role lists the admin credential, runs commands or grants every Kubernetes data action, or a standing membership of the cluster's admin group. People need this access for incidents, not every day: as an eligible assignment (or eligible group membership under PIM for Groups) it would exist only while activated, for hours, behind MFA, a justification and, where configured, an approval, and every activation would be logged. Standing, a stolen session or a leaver's forgotten account is cluster-admin at any time. Service principals are not reported (automation cannot activate), nor eligible or activated assignments.",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Replace the standing access with eligible access under Privileged Identity Management: create an eligible assignment of the same role at the same scope (for a role assignment, the commands below: a roleEligibilityScheduleRequest, then the deletion; or Privileged Identity Management > Azure resources > Assignments > Add, type Eligible), then delete the active one; for the admin group, bring it under PIM for Groups and make its members eligible. Keep at most one documented break-glass account standing, and accept its finding with that justification.",
	},
}
