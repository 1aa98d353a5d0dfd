package rules

import secureauditv1 "secureaudit.dev/gen/secureaudit/v1"

var (
	readVerbs  = []string{"get", "list", "watch"}
	writeAll   = []string{"create", "delete", "deletecollection", "patch", "update"}
	readWrite  = append(append([]string(nil), readVerbs...), writeAll...)
	aggregates = []string{"admin", "edit", "view"}
)

func rule(verbs []string, group string, resources ...string) *secureauditv1.PolicyRule {
	return &secureauditv1.PolicyRule{Verbs: verbs, ApiGroups: []string{group}, Resources: resources}
}

// upstreamView, upstreamEdit and upstreamAdmin are the risk-relevant part
// of the upstream bootstrap roles (k8s.io/kubernetes
// plugin/pkg/auth/authorizer/rbac/bootstrappolicy, the aggregate-to-*
// roles): everything the capability targets can see. Reads other than of
// secrets match no capability and are left out.
var (
	upstreamView = []*secureauditv1.PolicyRule{
		rule(readVerbs, coreGroup, "pods", "pods/log", "pods/status", "replicationcontrollers", "services", "endpoints",
			"persistentvolumeclaims", "configmaps", "serviceaccounts", "events", "namespaces"),
	}
	upstreamEdit = []*secureauditv1.PolicyRule{
		rule(readWrite, coreGroup, "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
		rule([]string{"create"}, coreGroup, "pods/eviction"),
		rule(readWrite, coreGroup, "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
		rule([]string{"create"}, coreGroup, "serviceaccounts/token"),
		rule([]string{"impersonate"}, coreGroup, "serviceaccounts"),
		rule(readWrite, appsGroup, "statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
			"deployments/rollback", "replicasets", "replicasets/scale"),
		rule(readWrite, "autoscaling", "horizontalpodautoscalers"),
		rule(readWrite, batchGroup, "jobs", "cronjobs"),
		rule(readWrite, "policy", "poddisruptionbudgets"),
		rule(readWrite, "networking.k8s.io", "networkpolicies", "ingresses"),
		rule(readWrite, "coordination.k8s.io", "leases"),
	}
	upstreamAdmin = append(append([]*secureauditv1.PolicyRule(nil), upstreamEdit...),
		rule(readWrite, rbacGroup, "roles", "rolebindings"),
		rule([]string{"create"}, "authorization.k8s.io", "localsubjectaccessreviews"),
	)
	// upstreamDiscovery is what system:discovery, system:basic-user and
	// system:public-info-viewer hold: non-resource URLs and self-reviews.
	upstreamDiscovery = []*secureauditv1.PolicyRule{
		{Verbs: []string{"get"}, NonResourceUrls: []string{"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version", "/version/", "/openapi", "/openapi/*"}},
		rule([]string{"create"}, "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
		rule([]string{"create"}, authnGroup, "selfsubjectreviews"),
	}
)

// upstream returns the upstream rules of a built-in ClusterRole this
// catalogue knows, and whether it knows it.
func upstream(name string) ([]*secureauditv1.PolicyRule, bool) {
	switch name {
	case "view", "system:aggregate-to-view":
		return upstreamView, true
	case "edit", "system:aggregate-to-edit":
		return upstreamEdit, true
	case "admin", "system:aggregate-to-admin":
		return upstreamAdmin, true
	case "system:discovery", "system:basic-user", "system:public-info-viewer":
		return upstreamDiscovery, true
	}
	return nil, false
}

// beyond returns the targets p grants that base does not, in capability
// order, and the rules of p that grant them.
func beyond(p, base *profile, all []*secureauditv1.PolicyRule) ([]target, []*secureauditv1.PolicyRule) {
	var extra []target
	var rules []*secureauditv1.PolicyRule
	if len(p.full) > 0 && len(base.full) == 0 {
		extra = append(extra, target{verb: "*", group: "*", resource: "*"})
		rules = append(rules, p.full...)
	}
	seen := map[target]bool{}
	for c := range numCaps {
		for _, t := range p.caps[c].found {
			if seen[t] || containsTarget(base.caps[c].found, t) {
				continue
			}
			seen[t] = true
			extra = append(extra, t)
			for _, r := range p.caps[c].rules {
				if allows(r, t) {
					rules = append(rules, r)
				}
			}
		}
	}
	return extra, mergeRules(all, rules)
}

func containsTarget(ts []target, t target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
