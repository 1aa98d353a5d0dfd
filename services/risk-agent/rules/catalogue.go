// Package rules is the risk-agent's deterministic rule catalogue: pure
// functions over an immutable snapshot (no I/O, no clock, no randomness) that
// turn RBAC grants into findings with stable rule IDs, severities and the
// reason for them, control mappings and remediation commands. The same
// snapshot always yields the same findings in the same order.
package rules

import (
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// CatalogueVersion identifies this rule catalogue; it changes whenever a
// rule's semantics, severity or text changes.
const CatalogueVersion = "2026.12.2"

// Rule IDs. They are stable: other agents, reports and tests depend on them.
const (
	ClusterAdmin           = "RBAC-001"
	AdminEditCluster       = "RBAC-002"
	SecretsRead            = "RBAC-003"
	Wildcard               = "RBAC-004"
	PodCreate              = "RBAC-005"
	PodExec                = "RBAC-006"
	DefaultSA              = "RBAC-007"
	SystemMasters          = "RBAC-008"
	EscalationVerbs        = "RBAC-009"
	DanglingBinding        = "RBAC-010"
	DefaultSAInUse         = "RBAC-011"
	TokenAutomount         = "RBAC-012"
	PVCreate               = "RBAC-013"
	NodesProxy             = "RBAC-014"
	CSRApproval            = "RBAC-015"
	WebhookWrite           = "RBAC-016"
	TokenCreate            = "RBAC-017"
	BindCreate             = "RBAC-018"
	SecretsWritePrivileged = "RBAC-019"
	WorkloadWrite          = "RBAC-020"
	PodPatch               = "RBAC-021"
	EphemeralContainers    = "RBAC-022"
	PortForward            = "RBAC-023"
	AdmissionPolicyWrite   = "RBAC-024"
	CRDWrite               = "RBAC-025"
	NodeWrite              = "RBAC-026"
	PodEvictPrivileged     = "RBAC-027"
	StatusWrite            = "RBAC-028"
	NetworkWrite           = "RBAC-029"
	ConfigMapWrite         = "RBAC-030"
	DestructiveDelete      = "RBAC-031"
	EventsDelete           = "RBAC-032"
	Anonymous              = "RBAC-033"
	AllAuthenticated       = "RBAC-034"
	BuiltinWidened         = "RBAC-035"
	AggregatesIntoBuiltin  = "RBAC-036"
	UnboundDangerous       = "RBAC-037"
	MissingServiceAccount  = "RBAC-038"
	BlastRadius            = "RBAC-039"
	RBACWrite              = "RBAC-040"
	TooLarge               = "RBAC-050"
	ControllerEscalation   = "RBAC-041"
	APIServiceWrite        = "RBAC-042"
	NamespaceWrite         = "RBAC-043"
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
		Description: "A bound role uses '*' in verbs, resources or apiGroups, which also grants every verb, resource or API added later. Only a '*' that writes in a built-in API group (or in every group) is a full wildcard, at the base severity; a '*' that writes only in custom resource API groups (the operator's own CRDs), or a read-only '*' (get, list, watch) that reaches Secrets (reads of '*' in the core group include them, reported as RBAC-003 too), is LOW and says what it is; a read-only '*' that reaches no Secrets is not reported.",
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
		Description: "The subject can exec or attach into running pods: a shell inside, and the pod's ServiceAccount token. From Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission, on by default) this needs create on pods/exec or pods/attach; before 1.35 get sufficed too (a websocket upgrade is a GET). The server version comes from the snapshot (discovery, --server-version, the Nodes' kubelet version) or the stated default, and the report says which applied.",
		Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
		Remediation: "Drop create (and, on clusters before 1.35, get) on pods/exec and pods/attach from the role.",
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
		Description: "The subject holds bind or escalate on roles or clusterroles, or impersonate on users, groups, serviceaccounts, uids or userextras, each of which lets it obtain permissions it does not hold.",
		Controls:    []string{"CIS-5.1.8", "SOC2-CC6.3"},
		Remediation: "Drop bind, escalate and impersonate from the role.",
	},
	{
		ID: DanglingBinding, Title: "binding to a missing role", Severity: secureauditv1.Severity_SEVERITY_LOW,
		Description: "The binding references a role that does not exist. It grants nothing today, but revives the moment a role of that name is created.",
		Controls:    []string{"SOC2-CC6.2"},
		Remediation: "Delete the binding, or create the intended role deliberately.",
	},
	{
		ID: DefaultSAInUse, Title: "default ServiceAccount used by pods", Severity: medium,
		Description: "Pods run as their namespace's default ServiceAccount. Every pod without an explicit ServiceAccount shares that identity, so any grant to it, now or later, reaches all of them.",
		Controls:    []string{"CIS-5.1.5", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Give each workload its own ServiceAccount and stop the default ServiceAccount's token from being mounted.",
	},
	{
		ID: TokenAutomount, Title: "ServiceAccount token automounted", Severity: low,
		Description: "Running pods mount the API token of a ServiceAccount that holds RBAC grants, although automountServiceAccountToken is not turned off on the pod or the ServiceAccount: whoever gets code execution in the pod inherits the grants.",
		Controls:    []string{"CIS-5.1.6", "SOC2-CC6.1"},
		Remediation: "Turn token automounting off on the ServiceAccount and turn it on only in the pods that call the API.",
	},
	{
		ID: PVCreate, Title: "persistent volumes creatable", Severity: high,
		Description: "The subject can create PersistentVolumes, including hostPath volumes that expose a node's filesystem to whichever pod claims them.",
		Controls:    []string{"CIS-5.1.9", "SOC2-CC6.3"},
		Remediation: "Drop create on persistentvolumes; let a StorageClass provisioner create them.",
	},
	{
		ID: NodesProxy, Title: "kubelet API through nodes/proxy", Severity: high,
		Description: "The subject can reach the kubelet API through nodes/proxy (get or create), which lets it run commands in every pod of every node and bypasses API server audit logging and admission.",
		Controls:    []string{"CIS-5.1.10", "SOC2-CC6.3"},
		Remediation: "Drop get and create on nodes/proxy; grant metrics access through nodes/metrics or nodes/stats instead.",
	},
	{
		ID: CSRApproval, Title: "certificate signing requests approvable", Severity: high,
		Description: "The subject can approve CertificateSigningRequests (update on certificatesigningrequests/approval together with approve on signers), and so mint client certificates for any user or group, system:masters included.",
		Controls:    []string{"CIS-5.1.11", "SOC2-CC6.3"},
		Remediation: "Drop update on certificatesigningrequests/approval and approve on signers; leave approval to the controller-manager.",
	},
	{
		ID: WebhookWrite, Title: "admission webhooks writable", Severity: high,
		Description: "The subject can create, change or delete validating or mutating webhook configurations: it can read or rewrite every object admitted to the cluster, or switch guardrails off.",
		Controls:    []string{"CIS-5.1.12", "SOC2-CC6.3"},
		Remediation: "Drop write verbs on validatingwebhookconfigurations and mutatingwebhookconfigurations.",
	},
	{
		ID: TokenCreate, Title: "ServiceAccount tokens mintable", Severity: high,
		Description: "The subject can create serviceaccounts/token, which mints a token for any ServiceAccount in reach and lets it act as that ServiceAccount. A ServiceAccount bound in its own namespace to token requests restricted by resourceNames to itself alone gains nothing and is not reported.",
		Controls:    []string{"CIS-5.1.13", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Drop create on serviceaccounts/token, or restrict it with resourceNames to the ServiceAccounts intended.",
	},
	{
		ID: BindCreate, Title: "can bind roles it does not hold", Severity: high,
		Description: "The subject holds bind on roles or clusterroles together with create on the matching bindings: it can bind any role it may bind (cluster-admin, unless restricted by resourceNames) to itself.",
		Controls:    []string{"CIS-5.1.8", "SOC2-CC6.3"},
		Remediation: "Drop bind from the role, or restrict it with resourceNames to harmless roles.",
	},
	{
		ID: SecretsWritePrivileged, Title: "secrets writable in a privileged namespace", Severity: high,
		Description: "The subject can create, update or patch Secrets in a privileged namespace (kube-system, or a namespace labelled pod-security.kubernetes.io/enforce=privileged), or cluster-wide: it can mint a token Secret for a powerful ServiceAccount or replace credentials the control plane and node agents trust.",
		Controls:    []string{"CIS-5.1.2", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Drop create, update and patch on secrets in privileged namespaces.",
	},
	{
		ID: WorkloadWrite, Title: "workloads writable", Severity: medium,
		Description: "The subject can create or change workload controllers (deployments, daemonsets, statefulsets, replicasets, jobs, cronjobs, replicationcontrollers), or create the custom resources whose controller runs pods as the ServiceAccount they name (Tekton TaskRuns and PipelineRuns, Argo Workflows and CronWorkflows), which create pods on its behalf: indirect pod creation with any ServiceAccount of the namespace.",
		Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
		Remediation: "Drop create, update and patch on workload resources; deploy through a pipeline identity instead.",
	},
	{
		ID: PodPatch, Title: "pods patchable", Severity: medium,
		Description: "The subject can update or patch running pods, for instance to swap a container image and run its own code with the pod's ServiceAccount.",
		Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
		Remediation: "Drop update and patch on pods.",
	},
	{
		ID: EphemeralContainers, Title: "ephemeral containers injectable", Severity: high,
		Description: "The subject can update pods/ephemeralcontainers and inject a debug container, possibly privileged, into any running pod it reaches, with that pod's ServiceAccount token.",
		Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
		Remediation: "Drop update and patch on pods/ephemeralcontainers.",
	},
	{
		ID: PortForward, Title: "port-forward into pods", Severity: medium,
		Description: "The subject can open port-forwards into pods and reach services that listen only inside the pod: create on pods/portforward, or before Kubernetes 1.35 get as well (a websocket upgrade is a GET).",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Drop create and get on pods/portforward.",
	},
	{
		ID: AdmissionPolicyWrite, Title: "admission policies writable", Severity: high,
		Description: "The subject can change admission policies (ValidatingAdmissionPolicies and their bindings, MutatingAdmissionPolicies, Kyverno or Gatekeeper policies) and so switch off the guardrails that stop privileged pods.",
		Controls:    []string{"CIS-5.1.12", "SOC2-CC6.3"},
		Remediation: "Drop write verbs on admission policy resources; manage them through a reviewed pipeline.",
	},
	{
		ID: CRDWrite, Title: "custom resource definitions writable", Severity: high,
		Description: "The subject can create, change or delete CustomResourceDefinitions: it can shadow or remove APIs that controllers and policy engines rely on.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop write verbs on customresourcedefinitions.",
	},
	{
		ID: NodeWrite, Title: "nodes writable", Severity: high,
		Description: "The subject can update, patch or delete Nodes or their status: taints and labels decide where pods land, so it can attract sensitive pods to a node it controls.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop write verbs on nodes and nodes/status; only kubelets and the cloud controller should hold them.",
	},
	{
		ID: PodEvictPrivileged, Title: "pods evictable in a privileged namespace", Severity: medium,
		Description: "The subject can delete or evict pods in a privileged namespace (kube-system, or a namespace labelled pod-security.kubernetes.io/enforce=privileged), or cluster-wide, which makes powerful pods reschedule, possibly onto a node it controls, and can disrupt the control plane's and the nodes' add-ons.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop delete on pods and create on pods/eviction in privileged namespaces.",
	},
	{
		ID: StatusWrite, Title: "pod or service status writable", Severity: medium,
		Description: "The subject can write pods/status or services/status: it can make a pod look ready to hijack Service traffic, or set a load-balancer IP to intercept traffic (CVE-2020-8554).",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop update and patch on pods/status and services/status.",
	},
	{
		ID: NetworkWrite, Title: "network objects writable", Severity: low,
		Description: "The subject can write Services, Endpoints, EndpointSlices, NetworkPolicies, Ingresses or Gateway API routes, and so redirect or open traffic.",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Drop write verbs on network resources for subjects that do not manage traffic.",
	},
	{
		ID: ConfigMapWrite, Title: "configmaps writable", Severity: low,
		Description: "The subject can write ConfigMaps; in kube-system that includes coredns, whose Corefile decides how every pod resolves names (DNS poisoning).",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop create, update and patch on configmaps, at least in kube-system.",
	},
	{
		ID: DestructiveDelete, Title: "destructive delete", Severity: low,
		Description: "The subject can delete (or deletecollection) workloads, Secrets, PersistentVolumeClaims or Namespaces: an outage or data loss away.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop delete and deletecollection on the resources the subject does not manage.",
	},
	{
		ID: EventsDelete, Title: "events deletable", Severity: low,
		Description: "The subject can delete Events, and so erase the trace of what it did (anti-forensics).",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop delete and deletecollection on events.",
	},
	{
		ID: Anonymous, Title: "anonymous access beyond discovery", Severity: critical,
		Description: "A binding grants system:anonymous or system:unauthenticated more than the default discovery roles: anyone who can reach the API server gets it without credentials. A grant of nothing but get on named objects of a non-sensitive kind (not Secrets, subresources or wildcards) is LOW.",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.1"},
		Remediation: "Remove the anonymous subjects from the binding.",
	},
	{
		ID: AllAuthenticated, Title: "every authenticated identity granted", Severity: high,
		Description: "A binding grants system:authenticated more than discovery: every identity that can log in, in managed clusters every user of the tenant, gets it. A grant of nothing but get on named objects of a non-sensitive kind (a public ConfigMap by resourceNames; not Secrets, subresources or wildcards) is LOW.",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Replace system:authenticated with the groups that need the role.",
	},
	{
		ID: BuiltinWidened, Title: "built-in role carries more than upstream", Severity: high,
		Description: "A ClusterRole of the API server's bootstrap policy (admin, edit, view, system:node, the system:controller:* roles and the rest, labelled kubernetes.io/bootstrapping=rbac-defaults) grants dangerous permissions its upstream definition does not, directly, through roles aggregated into it, or beyond the upstream resourceNames: everyone bound to it gets them silently. Upstream is the Kubernetes v1.37 bootstrap policy; other minor versions differ (an older cluster lacks some rules, which is not reported; a newer one may have gained rules, reported as widened; roles v1.37 does not create are not judged).",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.3"},
		Remediation: "Remove the extra rules, or the aggregation labels of the roles that contribute them; the API server restores missing upstream rules at start-up but keeps extra ones.",
	},
	{
		ID: AggregatesIntoBuiltin, Title: "ClusterRole aggregates into admin, edit or view", Severity: medium,
		Description: "A ClusterRole carries an rbac.authorization.k8s.io/aggregate-to-admin, -edit or -view label, so its rules are added to the built-in role for every subject bound to it, in every namespace. Severity by what it adds: writes on the custom resources of a privileged controller present in the snapshot (RBAC-041's table) HIGH; dangerous permissions the built-in role lacks at the base severity, except into admin or edit when they are only create on the custom resources that run pods in the namespace (RBAC-020's Tekton and Argo runs; admin and edit create pods already): LOW; any other write (create, update, patch, delete, deletecollection or '*') the built-in role lacks, on any API group, LOW, or MEDIUM into view, which is meant to be read-only. Reads are not reported.",
		Controls:    []string{"CIS-5.1.1", "SOC2-CC6.3"},
		Remediation: "Remove the aggregation label unless every admin, editor or viewer needs the rules.",
	},
	{
		ID: UnboundDangerous, Title: "dangerous role bound to nobody", Severity: low,
		Description: "A role grants dangerous permissions but no binding uses it: it is one bind away from being live, and nobody reviews it because it grants nothing today. The bootstrap policy's own roles (and system: Roles in kube-system and kube-public) are exempt; a role merely named system:... is not, since anyone can name a role so.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Delete the role if nobody needs it.",
	},
	{
		ID: MissingServiceAccount, Title: "workload uses a missing ServiceAccount", Severity: low,
		Description: "Pods reference a ServiceAccount that does not exist in a namespace whose ServiceAccounts were collected: whoever creates a ServiceAccount of that name decides what the pods may do.",
		Controls:    []string{"SOC2-CC6.1"},
		Remediation: "Create the ServiceAccount deliberately or fix the workload's serviceAccountName.",
	},
	{
		ID: BlastRadius, Title: "running pods hold a risky ServiceAccount token", Severity: high,
		Description: "Running pods mount the token of a ServiceAccount with a HIGH or CRITICAL finding: a container escape or remote code execution in any of them becomes that ServiceAccount's access.",
		Controls:    []string{"CIS-5.1.6", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Reduce the ServiceAccount's grants, or stop mounting its token in pods that do not need it.",
	},
	{
		ID: RBACWrite, Title: "RBAC objects writable", Severity: medium,
		Description: "The subject can create, update or patch roles or bindings: it can reshape grants within what the API server's escalation checks allow, and delete the ones that constrain others.",
		Controls:    []string{"CIS-5.1.8", "SOC2-CC6.3"},
		Remediation: "Drop write verbs on roles, clusterroles, rolebindings and clusterrolebindings.",
	},
	{
		ID: ControllerEscalation, Title: "reaches a privileged controller's rights", Severity: high,
		Description: "The subject can create or change custom resources that a more privileged controller acts on with its own rights (an Argo CD Application deploys manifests as argocd-application-controller, a Flux Kustomization or HelmRelease applies them as kustomize-controller or helm-controller): whatever the controller may do, the subject may have done. The resources and controllers come from a declared table (controllers.json, each entry with its public source); a finding names the controller ServiceAccount of the snapshot that holds the rights, and is raised only when that ServiceAccount is present and privileged. The path is conditional on the controller's configuration, which the snapshot does not show (Argo CD's AppProject restrictions and application namespaces, Flux's --default-service-account lockdown or spec.serviceAccountName impersonation): the finding states the assumption. ServiceAccounts in the controller's own namespace, parts of the same installation, are not reported.",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Drop write verbs on the controller's custom resources, or confine the controller (Flux: --default-service-account and spec.serviceAccountName; Argo CD: AppProjects limiting destinations and kinds) so that it acts with the requester's rights.",
	},
	{
		ID: APIServiceWrite, Title: "APIServices writable", Severity: high,
		Description: "The subject can create, update or patch APIServices (apiregistration.k8s.io): it can point an API group, existing or new, at a Service it controls, and so receive every request for that group, with the callers' credentials and data, or answer them as it likes.",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Drop create, update and patch on apiservices; only the installers of aggregated APIs (metrics-server) need them.",
	},
	{
		ID: NamespaceWrite, Title: "namespaces writable", Severity: medium,
		Description: "The subject can update or patch Namespaces, and so relabel one pod-security.kubernetes.io/enforce=privileged: every Pod Security limit of that namespace (privileged containers, host namespaces, hostPath) is lifted for whoever creates pods there. A RoleBinding grants it on its own namespace, since a request on a Namespace carries the namespace's name.",
		Controls:    []string{"SOC2-CC6.3"},
		Remediation: "Drop update and patch on namespaces; manage namespace labels through a reviewed pipeline.",
	},
	{
		ID: TooLarge, Title: "object too large to audit", Severity: high,
		Description: "The API server accepted this object, but it exceeds a limit that protects the audit's memory (its encoded size, the length of a string, the number of rules, verbs or annotations), so it was left out: whatever it grants, or whoever it binds, is not judged, and the audit is incomplete. Anyone who may create a role or binding can use an oversized object to hide a grant.",
		Controls:    []string{"SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Review the object by hand (kubectl get -o yaml), and split or shrink it so that the next audit can read it.",
	},
}

const (
	critical = secureauditv1.Severity_SEVERITY_CRITICAL
	high     = secureauditv1.Severity_SEVERITY_HIGH
	medium   = secureauditv1.Severity_SEVERITY_MEDIUM
	low      = secureauditv1.Severity_SEVERITY_LOW
)

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
	i, ok := slices.BinarySearchFunc(catalogue, id, func(r Rule, id string) int { return strings.Compare(r.ID, id) })
	if !ok {
		panic("rules: unknown rule " + id) // programming error: IDs are constants
	}
	return catalogue[i]
}
