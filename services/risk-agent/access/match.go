package access

import (
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// The wildcards of the RBAC API (k8s.io/api/rbac/v1: VerbAll, APIGroupAll,
// ResourceAll, NonResourceAll).
const (
	all = "*"
)

// RuleAllows reports whether one policy rule allows a request, exactly as the
// RBAC authorizer's RuleAllows (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac)
// with the k8s.io/component-helpers/auth/rbac/v1 helpers:
//
//   - a verb, API group or resource of "*" matches anything;
//   - a resource matches the request's "resource/subresource" exactly, or as
//     "*/subresource" when the request has a subresource; "pods/*" is not a
//     wildcard and only matches the literal subresource "*";
//   - resourceNames, when present, must contain the request's name
//     (ResourceNameMatches in k8s.io/kubernetes/pkg/apis/rbac/v1): a request
//     without a name, such as list or create, has the name "", so a rule
//     restricted by resourceNames allows it only when the list holds "";
//   - a non-resource URL matches exactly, or by prefix when it ends in "*".
func RuleAllows(r *secureauditv1.PolicyRule, a Attributes) bool {
	if !a.ResourceRequest {
		return verbMatches(r, a.Verb) && nonResourceURLMatches(r, a.Path)
	}
	combined := a.Resource
	if a.Subresource != "" {
		combined = a.Resource + "/" + a.Subresource
	}
	return verbMatches(r, a.Verb) &&
		apiGroupMatches(r, a.APIGroup) &&
		resourceMatches(r, combined, a.Subresource) &&
		resourceNameMatches(r, a.Name)
}

func verbMatches(r *secureauditv1.PolicyRule, verb string) bool {
	for _, v := range r.GetVerbs() {
		if v == all || v == verb {
			return true
		}
	}
	return false
}

func apiGroupMatches(r *secureauditv1.PolicyRule, group string) bool {
	for _, g := range r.GetApiGroups() {
		if g == all || g == group {
			return true
		}
	}
	return false
}

func resourceMatches(r *secureauditv1.PolicyRule, combined, subresource string) bool {
	for _, res := range r.GetResources() {
		if res == all || res == combined {
			return true
		}
		if subresource == "" {
			continue
		}
		if len(res) == len(subresource)+2 && strings.HasPrefix(res, "*/") && strings.HasSuffix(res, subresource) {
			return true
		}
	}
	return false
}

func resourceNameMatches(r *secureauditv1.PolicyRule, name string) bool {
	names := r.GetResourceNames()
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func nonResourceURLMatches(r *secureauditv1.PolicyRule, path string) bool {
	for _, u := range r.GetNonResourceUrls() {
		if u == all || u == path {
			return true
		}
		if strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*")) {
			return true
		}
	}
	return false
}
