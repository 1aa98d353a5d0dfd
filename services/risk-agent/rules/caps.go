package rules

import (
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

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
	CapAPIServiceWrite
	CapNamespaceWrite
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

// podRunningCRs are the custom resources whose controller runs pods as the
// ServiceAccount the resource names, in its namespace: Tekton TaskRuns and
// PipelineRuns (spec.serviceAccountName, taskRunTemplate), Argo Workflows
// (spec.serviceAccountName). Creating one is creating pods in the namespace.
var podRunningCRs = join(
	cross("tekton.dev", []string{"create"}, []string{"taskruns", "pipelineruns"}, false),
	cross("argoproj.io", []string{"create"}, []string{"workflows", "cronworkflows"}, false),
)

// capTargets lists each capability's targets. Targets on cluster-scoped
// resources are clusterOnly: a Role, or a RoleBinding to a ClusterRole,
// never grants them.
var capTargets = [numCaps][]target{
	CapSecretsRead: {{verb: "get", resource: "secrets"}, {verb: "list", resource: "secrets"}, {verb: "watch", resource: "secrets"}},
	CapPodCreate:   {{verb: "create", resource: "pods"}},
	CapExec: {
		{verb: "create", resource: "pods/exec"}, {verb: "get", resource: "pods/exec", streamGet: true},
		{verb: "create", resource: "pods/attach"}, {verb: "get", resource: "pods/attach", streamGet: true},
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
		podRunningCRs,
	),
	CapPodPatch:    cross(coreGroup, []string{"update", "patch"}, []string{"pods"}, false),
	CapEphemeral:   cross(coreGroup, []string{"update", "patch"}, []string{"pods/ephemeralcontainers"}, false),
	CapPortForward: {{verb: "create", resource: "pods/portforward"}, {verb: "get", resource: "pods/portforward", streamGet: true}},
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
		cross(coreGroup, []string{"delete"}, []string{"namespaces"}, false), // a RoleBinding deletes its own namespace
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
	CapAPIServiceWrite:            cross("apiregistration.k8s.io", writeVerbs, []string{"apiservices"}, true),
	// A request on a Namespace carries the namespace's own name as its
	// namespace: a RoleBinding in a namespace grants update on that
	// Namespace object.
	CapNamespaceWrite: cross(coreGroup, []string{"update", "patch"}, []string{"namespaces"}, false),
}

// profile is what one role grants at one scope (cluster-wide, or within a
// namespace): computed once per (role, scope) and shared by every binding
// of that role, which keeps the engine linear in the number of bindings.
type profile struct {
	all        []*secureauditv1.PolicyRule // the rules the matches point into
	caps       [numCaps]match
	full       []*secureauditv1.PolicyRule // rules granting everything
	fullNarrow bool                        // every full rule is restricted by resourceNames
	wildcard   wildcard
	// discovery is true when the rules grant nothing beyond discovery:
	// non-resource URLs and self-reviews.
	discovery bool
}

// newProfile computes what rules grant at one scope. streamGet says the
// API server is older than 1.35, where get on pods/exec, pods/attach and
// pods/portforward suffices (see Semantics).
func newProfile(rules []*secureauditv1.PolicyRule, namespaced, streamGet bool) *profile {
	p := &profile{all: rules, discovery: true}
	for c := range numCaps {
		p.caps[c] = find(rules, namespaced, streamGet, capTargets[c]...)
	}
	p.fullNarrow = true
	for _, r := range rules {
		if isFullWildcard(r) {
			p.full = append(p.full, r)
			if !restricted(r) {
				p.fullNarrow = false
			}
		}
		if !discoveryRule(r) {
			p.discovery = false
		}
	}
	p.wildcard = classifyWildcards(rules, namespaced)
	return p
}

// wildKind is what a role's wildcards really grant, least to most.
type wildKind int

const (
	// wildNone: no '*', or only '*' that reads non-sensitive resources
	// (get, list, watch on anything but Secrets): not reported.
	wildNone wildKind = iota
	// wildRead: '*' with read verbs only, reaching Secrets (reads of '*'
	// in the core group include them).
	wildRead
	// wildCustom: '*' that writes, but only in custom resource API groups
	// (the operator's own CRDs), never a built-in group.
	wildCustom
	// wildFull: '*' that writes in a built-in API group, or in every group.
	wildFull
)

// wildcard is the classification of a role's '*' rules.
type wildcard struct {
	kind   wildKind
	rules  []*secureauditv1.PolicyRule // the reported '*' rules
	fields []string                    // "verbs", "resources", "apiGroups" among them
	groups []string                    // the custom groups of wildCustom rules
	read   bool                        // some reported rule reads Secrets only
}

func (w wildcard) why(fields string) string {
	switch w.kind {
	case wildRead:
		return "read-only '*' in " + fields + ", reaching Secrets"
	case wildCustom:
		if w.read {
			return "'*' in " + fields + " writing only custom resources, and read-only '*' reaching Secrets"
		}
		return "'*' in " + fields + " only in custom resource groups " + strings.Join(w.groups, ", ")
	}
	return "'*' in " + fields
}

func (w wildcard) detail() string {
	var parts []string
	if w.kind == wildCustom {
		parts = append(parts, "It is not a full wildcard: the '*' that writes reaches only the custom resource API groups "+strings.Join(w.groups, ", ")+", no built-in group.")
	}
	if w.read {
		parts = append(parts, "A read-only '*' (get, list, watch) reaches Secrets, which RBAC-003 reports.")
	}
	return strings.Join(parts, " ")
}

// readVerbs are the verbs that only read.
var readVerbs = []string{"get", "list", "watch"}

// builtinGroup reports whether an API group is served by Kubernetes itself
// (or could be: '*'): the core group, a group without a dot (apps, batch,
// policy, autoscaling), or one under k8s.io. Other groups are custom
// resources' (argoproj.io, cert-manager.io, monitoring.coreos.com).
func builtinGroup(g string) bool {
	return g == "*" || g == "" || !strings.Contains(g, ".") || g == "k8s.io" || strings.HasSuffix(g, ".k8s.io")
}

// classifyWildcards finds what the '*' rules of a role really grant.
func classifyWildcards(rules []*secureauditv1.PolicyRule, namespaced bool) wildcard {
	var w wildcard
	fields := map[string]bool{}
	for _, r := range rules {
		f := wildcardFields(r)
		if len(f) == 0 {
			continue
		}
		kind := wildFull
		switch {
		case !slices.ContainsFunc(r.GetVerbs(), func(v string) bool { return !slices.Contains(readVerbs, v) }):
			kind = wildNone
			if find([]*secureauditv1.PolicyRule{r}, namespaced, false, capTargets[CapSecretsRead]...).ok() {
				kind = wildRead
				w.read = true
			}
		case !slices.ContainsFunc(r.GetApiGroups(), builtinGroup):
			kind = wildCustom
			for _, g := range r.GetApiGroups() {
				if !slices.Contains(w.groups, g) {
					w.groups = append(w.groups, g)
				}
			}
		}
		if kind == wildNone {
			continue
		}
		w.kind = max(w.kind, kind)
		w.rules = append(w.rules, r)
		for _, x := range f {
			fields[x] = true
		}
	}
	slices.Sort(w.groups)
	for _, f := range []string{"verbs", "resources", "apiGroups"} {
		if fields[f] {
			w.fields = append(w.fields, f)
		}
	}
	return w
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
			if t.streamGet {
				s += " (before Kubernetes 1.35 only)"
			}
			out = append(out, s)
		}
	}
	return out
}
