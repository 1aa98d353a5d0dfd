package snapshot

import (
	"slices"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// aggregate resolves aggregated ClusterRoles. A ClusterRole with aggregation
// selectors gets, in addition to its own rules, the rules of every other
// ClusterRole whose labels match any of its selectors, and transitively the
// rules those roles aggregate: the least fixed point of
//
//	effective(R) = own(R) ∪ ⋃ { effective(S) : S ≠ R, S matches a selector of R }
//
// which is what the aggregation controller converges to when it is run
// repeatedly (it is also computed for manifests, where the controller never
// filled the rules in). The order is deterministic: own rules first, then
// the roles reached breadth-first, each level's roles by name; a rule equal to
// one already present is dropped.
func aggregate(roles map[string]*secureauditv1.ClusterRole) map[string][]*secureauditv1.PolicyRule {
	names := sortedKeys(roles)
	// edges[R] lists, by name, the roles R's selectors match.
	edges := map[string][]string{}
	for _, r := range names {
		sel := roles[r].GetAggregationSelectors()
		if len(sel) == 0 {
			continue
		}
		for _, s := range names {
			if s == r {
				continue
			}
			if slices.ContainsFunc(sel, func(ls *secureauditv1.LabelSelector) bool {
				return Matches(ls, roles[s].GetMeta().GetLabels())
			}) {
				edges[r] = append(edges[r], s)
			}
		}
	}
	out := make(map[string][]*secureauditv1.PolicyRule, len(roles))
	for _, r := range names {
		var rules []*secureauditv1.PolicyRule
		add := func(rs []*secureauditv1.PolicyRule) {
			for _, x := range rs {
				if !slices.ContainsFunc(rules, func(y *secureauditv1.PolicyRule) bool { return proto.Equal(x, y) }) {
					rules = append(rules, x)
				}
			}
		}
		add(roles[r].GetRules())
		seen := map[string]bool{r: true}
		queue := []string{r}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, next := range edges[cur] {
				if seen[next] {
					continue
				}
				seen[next] = true
				add(roles[next].GetRules())
				queue = append(queue, next)
			}
		}
		out[r] = rules
	}
	return out
}

// Matches reports whether labels satisfy a label selector: every matchLabels
// pair and every matchExpressions requirement (In, NotIn, Exists,
// DoesNotExist, as in Kubernetes). As in Kubernetes, a selector with neither
// matchLabels nor matchExpressions matches everything; an unknown operator
// matches nothing.
func Matches(sel *secureauditv1.LabelSelector, labels map[string]string) bool {
	for k, v := range sel.GetMatchLabels() {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, req := range sel.GetMatchExpressions() {
		v, ok := labels[req.GetKey()]
		switch req.GetOperator() {
		case "In":
			if !ok || !slices.Contains(req.GetValues(), v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(req.GetValues(), v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}
