package rules

import (
	"fmt"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// target is one permission a rule looks for.
type target struct {
	verb     string
	group    string
	resource string // combined, e.g. "pods/exec"
	// clusterOnly targets cannot be granted in a namespace: a Role, or a
	// RoleBinding to a ClusterRole, never grants them.
	clusterOnly bool
	// prefix targets match any resource starting with resource+"/" (such
	// as userextras/<key>, one subresource per extra key), or '*'.
	prefix bool
	// streamGet targets (get on pods/exec, pods/attach, pods/portforward)
	// count only on API servers before 1.35, which authorize a websocket
	// upgrade as get; see Semantics.
	streamGet bool
}

func (t target) String() string { return t.verb + " " + t.resource }

// allows reports whether a policy rule grants t, following the RBAC
// authorizer (k8s.io/component-helpers/auth/rbac.ResourceMatches): '*'
// matches every verb, API group and resource; a resource matches exactly, or
// as "*/<subresource>". "<resource>/*" is NOT a wildcard: the authorizer
// compares it literally, so it grants no real subresource. A rule restricted
// by resourceNames still matches (callers reduce severity), except for
// create and deletecollection, requests without a name: the authorizer
// allows them only when resourceNames holds "" (see restricted).
func allows(r *secureauditv1.PolicyRule, t target) bool {
	if restricted(r) && (t.verb == "deletecollection" || t.verb == "create" && !strings.Contains(t.resource, "/")) {
		return false
	}
	if t.prefix {
		return hasOrStar(r.GetVerbs(), t.verb) && hasOrStar(r.GetApiGroups(), t.group) &&
			slices.ContainsFunc(r.GetResources(), func(x string) bool {
				// "userextras/*" is literal to the authorizer, not a wildcard.
				return x == "*" || strings.HasPrefix(x, t.resource+"/") && !strings.HasSuffix(x, "/*")
			})
	}
	return hasOrStar(r.GetVerbs(), t.verb) &&
		hasOrStar(r.GetApiGroups(), t.group) &&
		resourceMatches(r.GetResources(), t.resource)
}

// restricted reports whether resourceNames narrow r to some objects. The
// authorizer compares a request's name with each entry, and requests without
// a name (list, watch, create, deletecollection) have the name "": a list
// holding "" lets all of those through, so list and watch read every object
// and the rule is no narrower than one without resourceNames.
func restricted(r *secureauditv1.PolicyRule) bool {
	names := r.GetResourceNames()
	return len(names) > 0 && !slices.Contains(names, "")
}

func hasOrStar(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}

func resourceMatches(resources []string, combined string) bool {
	_, sub, hasSub := strings.Cut(combined, "/")
	for _, r := range resources {
		switch {
		case r == "*", r == combined:
			return true
		case hasSub && len(r) == len(sub)+2 && r[:2] == "*/" && r[2:] == sub:
			return true
		}
	}
	return false
}

// match is the outcome of looking for a set of targets in a grant's rules.
type match struct {
	rules  []*secureauditv1.PolicyRule
	found  []target // the targets granted, in the order asked
	list   string   // targetList(found)
	short  string   // summary(found), for severity reasons
	narrow bool     // every matched rule is restricted by resourceNames
}

func (m match) ok() bool { return len(m.found) > 0 }

// find looks for each target in rules. In a namespace grant, cluster-only
// targets are never granted; streamGet targets count only when streamGet
// is set (an API server before 1.35).
func find(rules []*secureauditv1.PolicyRule, namespaced, streamGet bool, targets ...target) match {
	var m match
	m.narrow = true
	for _, t := range targets {
		if namespaced && t.clusterOnly || t.streamGet && !streamGet {
			continue
		}
		hit := false
		for _, r := range rules {
			if !allows(r, t) {
				continue
			}
			hit = true
			if !slices.Contains(m.rules, r) {
				m.rules = append(m.rules, r)
				if !restricted(r) {
					m.narrow = false
				}
			}
		}
		if hit {
			m.found = append(m.found, t)
		}
	}
	if !m.ok() {
		m.narrow = false
	}
	m.list = targetList(m.found)
	m.short = summary(m.found)
	// Keep matched rules in the role's order.
	slices.SortStableFunc(m.rules, func(a, b *secureauditv1.PolicyRule) int {
		return slices.Index(rules, a) - slices.Index(rules, b)
	})
	return m
}

// isFullWildcard reports whether r grants every verb on every resource in
// every API group.
func isFullWildcard(r *secureauditv1.PolicyRule) bool {
	return slices.Contains(r.GetVerbs(), "*") && slices.Contains(r.GetResources(), "*") && slices.Contains(r.GetApiGroups(), "*")
}

// wildcardFields names the fields of a resource rule that hold '*'.
func wildcardFields(r *secureauditv1.PolicyRule) []string {
	if len(r.GetResources()) == 0 {
		return nil // non-resource URL rules are not wildcard grants on the API
	}
	var f []string
	if slices.Contains(r.GetVerbs(), "*") {
		f = append(f, "verbs")
	}
	if slices.Contains(r.GetResources(), "*") {
		f = append(f, "resources")
	}
	if slices.Contains(r.GetApiGroups(), "*") {
		f = append(f, "apiGroups")
	}
	return f
}

// summary names at most four targets and counts the rest, for text with a
// tight length limit such as severity_reason.
func summary(ts []target) string {
	const n = 4
	if len(ts) <= n {
		return targetList(ts)
	}
	return targetList(ts[:n]) + fmt.Sprintf(" and %d more", len(ts)-n)
}
