package rules

import secureauditv1 "secureaudit.dev/gen/secureaudit/v1"

// Capability is a permission the rules and the escalation-path search
// reason about, such as creating pods or reading secrets. Each is a set of
// targets; a grant holds the capability when one of its rules allows any of
// them.
type Capability int

// Capabilities. The order is internal; use the names.
const (
	CapSecretsRead Capability = iota
	CapPodCreate
	CapExec
	CapEscalation // bind, escalate, impersonate (RBAC-009)
	CapPVCreate
	CapNodesProxy
	CapCSRApproval
	CapSignersApprove
	CapWebhookWrite
	CapTokenCreate
	CapBind
	CapCreateBindings
	CapSecretsWrite
	CapWorkloadWrite
	CapPodPatch
	CapEphemeral
	CapPortForward
	CapAdmissionPolicyWrite
	CapCRDWrite
	CapNodeWrite
	CapPodEvict
	CapStatusWrite
	CapNetworkWrite
	CapConfigMapWrite
	CapDestructiveDelete
	CapEventsDelete
	CapRBACWrite
	CapEscalateClusterRoles
	CapImpersonateUsers
	CapImpersonateGroups
	CapImpersonateServiceAccounts
	CapCreateClusterRoleBindings
	numCaps
)

const (
	coreGroup      = ""
	rbacGroup      = "rbac.authorization.k8s.io"
	appsGroup      = "apps"
	batchGroup     = "batch"
	certGroup      = "certificates.k8s.io"
	admissionGroup = "admissionregistration.k8s.io"
	authnGroup     = "authentication.k8s.io"
)

var writeVerbs = []string{"create", "update", "patch"}

// cross returns one target per verb and resource.
func cross(group string, verbs []string, resources []string, clusterOnly bool) []target {
	var out []target
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, target{verb: v, group: group, resource: r, clusterOnly: clusterOnly})
		}
	}
	return out
}

func join(ts ...[]target) []target {
	var out []target
	for _, t := range ts {
		out = append(out, t...)
	}
	return out
}

// capTargets lists each capability's targets. Targets on cluster-scoped
// resources are clusterOnly: a Role, or a RoleBinding to a ClusterRole,
// never grants them.
var capTargets = [numCaps][]target{
	CapSecretsRead: {{verb: "get", resource: "secrets"}, {verb: "list", resource: "secrets"}, {verb: "watch", resource: "secrets"}},
	CapPodCreate:   {{verb: "create", resource: "pods"}},
	CapExec: {
		{verb: "create", resource: "pods/exec"}, {verb: "get", resource: "pods/exec"},
		{verb: "create", resource: "pods/attach"}, {verb: "get", resource: "pods/attach"},
	},
	CapEscalation: {
		{verb: "bind", group: rbacGroup, resource: "roles"},
		// A RoleBinding can reference a ClusterRole, so bind on clusterroles
		// is meaningful within a namespace too.
		{verb: "bind", group: rbacGroup, resource: "clusterroles"},
		{verb: "escalate", group: rbacGroup, resource: "roles"},
		{verb: "escalate", group: rbacGroup, resource: "clusterroles", clusterOnly: true},
		{verb: "impersonate", resource: "users", clusterOnly: true},
		{verb: "impersonate", resource: "groups", clusterOnly: true},
		{verb: "impersonate", resource: "serviceaccounts"},
		{verb: "impersonate", group: authnGroup, resource: "uids", clusterOnly: true},
		{verb: "impersonate", group: authnGroup, resource: "userextras", clusterOnly: true, prefix: true},
	},
	CapPVCreate:   {{verb: "create", resource: "persistentvolumes", clusterOnly: true}},
	CapNodesProxy: {{verb: "get", resource: "nodes/proxy", clusterOnly: true}, {verb: "create", resource: "nodes/proxy", clusterOnly: true}},
	CapCSRApproval: {
		{verb: "update", group: certGroup, resource: "certificatesigningrequests/approval", clusterOnly: true},
		{verb: "patch", group: certGroup, resource: "certificatesigningrequests/approval", clusterOnly: true},
	},
	CapSignersApprove: {{verb: "approve", group: certGroup, resource: "signers", clusterOnly: true}},
	CapWebhookWrite: cross(admissionGroup, []string{"create", "update", "patch", "delete"},
		[]string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}, true),
	CapTokenCreate: {{verb: "create", resource: "serviceaccounts/token"}},
	CapBind: {
		{verb: "bind", group: rbacGroup, resource: "roles"},
		{verb: "bind", group: rbacGroup, resource: "clusterroles"},
	},
	CapCreateBindings: {
		{verb: "create", group: rbacGroup, resource: "rolebindings"},
		{verb: "create", group: rbacGroup, resource: "clusterrolebindings", clusterOnly: true},
	},
	CapSecretsWrite: cross(coreGroup, writeVerbs, []string{"secrets"}, false),
	CapWorkloadWrite: join(
		cross(appsGroup, writeVerbs, []string{"deployments", "daemonsets", "statefulsets", "replicasets"}, false),
		cross(batchGroup, writeVerbs, []string{"jobs", "cronjobs"}, false),
		cross(coreGroup, writeVerbs, []string{"replicationcontrollers"}, false),
	),
	CapPodPatch:    cross(coreGroup, []string{"update", "patch"}, []string{"pods"}, false),
	CapEphemeral:   cross(coreGroup, []string{"update", "patch"}, []string{"pods/ephemeralcontainers"}, false),
	CapPortForward: cross(coreGroup, []string{"create", "get"}, []string{"pods/portforward"}, false),
	CapAdmissionPolicyWrite: join(
		cross(admissionGroup, []string{"create", "update", "patch", "delete"}, []string{
			"validatingadmissionpolicies", "validatingadmissionpolicybindings",
			"mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
		}, true),
		cross("kyverno.io", []string{"create", "update", "patch", "delete"}, []string{"clusterpolicies"}, true),
		cross("kyverno.io", []string{"create", "update", "patch", "delete"}, []string{"policies", "policyexceptions"}, false),
		cross("templates.gatekeeper.sh", []string{"create", "update", "patch", "delete"}, []string{"constrainttemplates"}, true),
	),
	CapCRDWrite: cross("apiextensions.k8s.io", []string{"create", "update", "patch", "delete"}, []string{"customresourcedefinitions"}, true),
	CapNodeWrite: join(
		cross(coreGroup, []string{"create", "update", "patch", "delete"}, []string{"nodes"}, true),
		cross(coreGroup, []string{"update", "patch"}, []string{"nodes/status"}, true),
	),
	CapPodEvict: join(
		cross(coreGroup, []string{"delete", "deletecollection"}, []string{"pods"}, false),
		cross(coreGroup, []string{"create"}, []string{"pods/eviction"}, false),
	),
	CapStatusWrite: cross(coreGroup, []string{"update", "patch"}, []string{"pods/status", "services/status"}, false),
	CapNetworkWrite: join(
		cross(coreGroup, writeVerbs, []string{"services", "endpoints"}, false),
		cross("discovery.k8s.io", writeVerbs, []string{"endpointslices"}, false),
		cross("networking.k8s.io", writeVerbs, []string{"networkpolicies", "ingresses"}, false),
		cross("gateway.networking.k8s.io", writeVerbs, []string{"gateways", "httproutes"}, false),
	),
	CapConfigMapWrite: cross(coreGroup, writeVerbs, []string{"configmaps"}, false),
	CapDestructiveDelete: join(
		cross(appsGroup, []string{"delete", "deletecollection"}, []string{"deployments", "daemonsets", "statefulsets"}, false),
		cross(coreGroup, []string{"delete", "deletecollection"}, []string{"secrets", "persistentvolumeclaims"}, false),
		cross(coreGroup, []string{"delete"}, []string{"namespaces"}, true),
	),
	CapEventsDelete: join(
		cross(coreGroup, []string{"delete", "deletecollection"}, []string{"events"}, false),
		cross("events.k8s.io", []string{"delete", "deletecollection"}, []string{"events"}, false),
	),
	CapRBACWrite: join(
		cross(rbacGroup, writeVerbs, []string{"roles", "rolebindings"}, false),
		cross(rbacGroup, writeVerbs, []string{"clusterroles", "clusterrolebindings"}, true),
	),
	CapEscalateClusterRoles:       {{verb: "escalate", group: rbacGroup, resource: "clusterroles", clusterOnly: true}},
	CapImpersonateUsers:           {{verb: "impersonate", resource: "users", clusterOnly: true}},
	CapImpersonateGroups:          {{verb: "impersonate", resource: "groups", clusterOnly: true}},
	CapImpersonateServiceAccounts: {{verb: "impersonate", resource: "serviceaccounts"}},
	CapCreateClusterRoleBindings:  {{verb: "create", group: rbacGroup, resource: "clusterrolebindings", clusterOnly: true}},
}

// profile is what one role grants at one scope (cluster-wide, or within a
// namespace): computed once per (role, scope) and shared by every binding
// of that role, which keeps the engine linear in the number of bindings.
type profile struct {
	all        []*secureauditv1.PolicyRule // the rules the matches point into
	caps       [numCaps]match
	full       []*secureauditv1.PolicyRule // rules granting everything
	fullNarrow bool                        // every full rule is restricted by resourceNames
	wild       []*secureauditv1.PolicyRule // rules with '*' somewhere
	wildFields []string
	// discovery is true when the rules grant nothing beyond discovery:
	// non-resource URLs and self-reviews.
	discovery bool
}

func newProfile(rules []*secureauditv1.PolicyRule, namespaced bool) *profile {
	p := &profile{all: rules, discovery: true}
	for c := range numCaps {
		p.caps[c] = find(rules, namespaced, capTargets[c]...)
	}
	p.fullNarrow = true
	fields := map[string]bool{}
	for _, r := range rules {
		if isFullWildcard(r) {
			p.full = append(p.full, r)
			if !restricted(r) {
				p.fullNarrow = false
			}
		}
		if f := wildcardFields(r); len(f) > 0 {
			p.wild = append(p.wild, r)
			for _, x := range f {
				fields[x] = true
			}
		}
		if !discoveryRule(r) {
			p.discovery = false
		}
	}
	for _, f := range []string{"verbs", "resources", "apiGroups"} {
		if fields[f] {
			p.wildFields = append(p.wildFields, f)
		}
	}
	return p
}

// discoveryRule reports whether r grants only non-resource URLs or the
// self-review APIs every user has by default.
func discoveryRule(r *secureauditv1.PolicyRule) bool {
	if len(r.GetResources()) == 0 {
		return true
	}
	for _, g := range r.GetApiGroups() {
		if g != "authorization.k8s.io" && g != authnGroup {
			return false
		}
	}
	for _, res := range r.GetResources() {
		switch res {
		case "selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews":
		default:
			return false
		}
	}
	return true
}

// ruleCaps lists the capabilities behind each capability rule: the rule
// fires when a grant holds any of them (all of them for RBAC-015 and
// RBAC-018).
var ruleCaps = map[string][]Capability{
	SecretsRead:     {CapSecretsRead},
	PodCreate:       {CapPodCreate},
	PodExec:         {CapExec},
	EscalationVerbs: {CapEscalation},
	CSRApproval:     {CapCSRApproval, CapSignersApprove},
	BindCreate:      {CapBind, CapCreateBindings},
}

// Permissions returns, for a rule that fires on permissions, the
// permissions it looks for, as "verb group/resource" ("core" for the core
// group), with "(cluster-wide only)" on those no Role or RoleBinding can
// grant; nil for other rules.
func Permissions(id string) []string {
	caps := ruleCaps[id]
	for _, pr := range permRules {
		if pr.id == id {
			caps = []Capability{pr.c}
		}
	}
	var out []string
	for _, c := range caps {
		for _, t := range capTargets[c] {
			g := t.group
			if g == "" {
				g = "core"
			}
			s := t.verb + " " + g + "/" + t.resource
			if t.prefix {
				s += "/<key>"
			}
			if t.clusterOnly {
				s += " (cluster-wide only)"
			}
			out = append(out, s)
		}
	}
	return out
}
