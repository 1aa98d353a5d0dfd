package snapshot

import (
	"slices"
	"strconv"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// maxAggregationPasses bounds the controller passes aggregate simulates
// beyond the number of aggregated roles. Without a cycle the passes settle
// after at most as many passes as aggregated roles are nested, plus one.
const maxAggregationPasses = 64

// aggregate returns the rules each ClusterRole holds once the
// clusterrole-aggregation controller of kube-controller-manager
// (k8s.io/kubernetes/pkg/controller/clusterroleaggregation) has run over the
// snapshot, for manifests (where it never ran) and live dumps (where it did:
// their rules are already its output, a state its passes leave unchanged).
//
// The controller syncs one role with aggregation selectors at a time: for
// each selector in order, the ClusterRoles it matches sorted by name, the
// role itself skipped, it appends every rule of their CURRENT rules that is
// not yet in the list. When that list is not empty it REPLACES the role's
// rules (the role's own rules are dropped); when it is empty (no role
// matches, or the roles that match hold no rules) its server-side apply
// carries no rules and the role keeps the rules it has. Every change to any
// ClusterRole requeues every aggregated role, so the controller runs passes
// until nothing changes. aggregate does the same, syncing the aggregated
// roles in name order, pass after pass, from the rules the snapshot holds.
// (In a live cluster, a role whose selectors matched once and no longer do
// has lost the rules the controller applied, as its apply now carries none;
// a live dump shows that, and an empty role stays empty here.)
//
// Without a cycle among aggregated roles the result does not depend on the
// order of the syncs. With a cycle (aggregated roles selecting each other),
// it does, upstream too: the rules of a member read by another before its
// own first sync circulate in the cycle for good, and which member that is
// depends on the controller's queue. aggregate takes name order. If the
// passes never settle (a cycle that rewrites itself forever, which the
// controller would also do), each aggregated role gets the union of the
// rules it takes over the repeating passes.
func aggregate(roles map[string]*secureauditv1.ClusterRole) map[string][]*secureauditv1.PolicyRule {
	names := sortedKeys(roles)
	// Rules are compared by content (the controller's semantic equality),
	// through an id per distinct content; the rules returned are the
	// messages of the roles that define them.
	ids := map[string]int{}
	idOf := map[*secureauditv1.PolicyRule]int{}
	id := func(r *secureauditv1.PolicyRule) int {
		if n, ok := idOf[r]; ok {
			return n
		}
		k := string(encode(r))
		n, ok := ids[k]
		if !ok {
			n = len(ids)
			ids[k] = n
		}
		idOf[r] = n
		return n
	}
	cur := make(map[string][]*secureauditv1.PolicyRule, len(roles))
	for _, n := range names {
		cur[n] = roles[n].GetRules()
	}
	// sources[R] lists, in the controller's order, the roles R's selectors
	// match (each once: a second match adds no rule).
	var aggregated []string
	sources := map[string][]string{}
	for _, r := range names {
		sel := roles[r].GetAggregationSelectors()
		if len(sel) == 0 || slices.ContainsFunc(sel, invalid) {
			// No selectors: nothing to sync. An invalid selector fails
			// the controller's sync of the role, which then keeps its rules.
			continue
		}
		aggregated = append(aggregated, r)
		var src []string
		for _, ls := range sel {
			for _, s := range names {
				if s != r && !slices.Contains(src, s) && Matches(ls, roles[s].GetMeta().GetLabels()) {
					src = append(src, s)
				}
			}
		}
		sources[r] = src
	}
	// sync computes what the controller would write into r now.
	sync := func(r string) []*secureauditv1.PolicyRule {
		var next []*secureauditv1.PolicyRule
		seen := map[int]bool{}
		for _, s := range sources[r] {
			for _, x := range cur[s] {
				if n := id(x); !seen[n] {
					seen[n] = true
					next = append(next, x)
				}
			}
		}
		return next
	}
	same := func(a, b []*secureauditv1.PolicyRule) bool {
		return slices.EqualFunc(a, b, func(x, y *secureauditv1.PolicyRule) bool { return id(x) == id(y) })
	}
	state := func() string {
		var b strings.Builder
		for _, r := range aggregated {
			for _, x := range cur[r] {
				b.WriteString(strconv.Itoa(id(x)))
				b.WriteByte(',')
			}
			b.WriteByte(';')
		}
		return b.String()
	}
	// history[i] holds the aggregated roles' rules after pass i; passAt
	// finds the pass that left a state, to detect a loop.
	history := []map[string][]*secureauditv1.PolicyRule{snapshotOf(cur, aggregated)}
	passAt := map[string]int{state(): 0}
	settled := false
	loopFrom := 0
	for pass := 1; pass <= len(aggregated)+maxAggregationPasses; pass++ {
		changed := false
		for _, r := range aggregated {
			next := sync(r)
			if len(next) == 0 || same(next, cur[r]) {
				continue
			}
			cur[r] = next
			changed = true
		}
		if !changed {
			settled = true
			break
		}
		st := state()
		history = append(history, snapshotOf(cur, aggregated))
		if at, ok := passAt[st]; ok {
			loopFrom = at
			break
		}
		passAt[st] = pass
		loopFrom = 1 // if the passes run out: every state after the first pass
	}
	if !settled {
		// The passes loop (or ran out): each role takes the union of its
		// rules over the states of the loop.
		for _, r := range aggregated {
			var union []*secureauditv1.PolicyRule
			seen := map[int]bool{}
			for _, h := range history[loopFrom:] {
				for _, x := range h[r] {
					if n := id(x); !seen[n] {
						seen[n] = true
						union = append(union, x)
					}
				}
			}
			cur[r] = union
		}
	}
	return cur
}

// snapshotOf copies the rules of the aggregated roles.
func snapshotOf(cur map[string][]*secureauditv1.PolicyRule, aggregated []string) map[string][]*secureauditv1.PolicyRule {
	m := make(map[string][]*secureauditv1.PolicyRule, len(aggregated))
	for _, r := range aggregated {
		m[r] = slices.Clone(cur[r])
	}
	return m
}

// invalid reports whether the controller fails to turn a selector into a
// label selector (metav1.LabelSelectorAsSelector): an unknown operator, In
// or NotIn without values, Exists or DoesNotExist with values. The API
// server refuses such a ClusterRole; a manifest may hold one.
func invalid(ls *secureauditv1.LabelSelector) bool {
	for _, req := range ls.GetMatchExpressions() {
		switch req.GetOperator() {
		case "In", "NotIn":
			if len(req.GetValues()) == 0 {
				return true
			}
		case "Exists", "DoesNotExist":
			if len(req.GetValues()) > 0 {
				return true
			}
		default:
			return true
		}
	}
	return false
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
