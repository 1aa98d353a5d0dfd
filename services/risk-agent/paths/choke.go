package paths

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
)

// maxCandidates bounds the bindings tried as choke points (those on the
// most proven paths), so the search stays linear in the snapshot.
const maxCandidates = 64

// provenPath is a subject with a proven path to cluster-admin and its
// finding.
type provenPath struct {
	node    int
	finding *secureauditv1.Finding
}

// bindingKey identifies a binding.
func bindingKey(b *secureauditv1.BindingRef) string {
	return b.GetKind().String() + "/" + b.GetNamespace() + "/" + b.GetName()
}

// candidate is a binding and the proven paths its removal alone closes.
type candidate struct {
	key    string
	grant  *rules.Grant // a grant of the binding, for its ref and role
	on     int          // proven shortest paths that use it
	users  []int        // their indexes into the proven paths
	closes []int        // indexes into the proven paths
}

// chokePoints chooses, by greedy set cover over the proven paths, the
// bindings whose removal closes the most of them. Removing a binding closes
// a path when its subject has no proven path left once every edge the
// binding grants is gone, so a subject with a second way in is not counted.
// Each choke point lists every path it closes, and groups those no earlier
// choke point closes; a path no single removal closes is in no group.
func (g *graph) chokePoints(a *rules.Analysis, admin int, proven searchResult, paths []provenPath) []*secureauditv1.ChokePoint {
	if len(paths) == 0 {
		return nil
	}
	// Grants of one binding share its BindingRef: its key is computed once.
	keys := map[*secureauditv1.BindingRef]string{}
	keyOf := func(b *secureauditv1.BindingRef) string {
		k, ok := keys[b]
		if !ok {
			k = bindingKey(b)
			keys[b] = k
		}
		return k
	}
	byKey := map[string]*candidate{}
	var cands []*candidate
	var seen []string // the bindings of the current path (at most MaxSteps)
	for pi, p := range paths {
		seen = seen[:0]
		for v := p.node; v != admin; {
			e := g.at(proven.next[v])
			v = e.to
			if e.grant == nil || azureBinding(e.grant.Binding) {
				continue // a step through Azure is no binding to remove
			}
			k := keyOf(e.grant.Binding)
			if slices.Contains(seen, k) {
				continue
			}
			seen = append(seen, k)
			c, ok := byKey[k]
			if !ok {
				c = &candidate{key: k, grant: e.grant}
				byKey[k] = c
				cands = append(cands, c)
			}
			c.on++
			c.users = append(c.users, pi)
		}
	}
	slices.SortStableFunc(cands, func(x, y *candidate) int {
		if c := cmp.Compare(y.on, x.on); c != 0 {
			return c
		}
		return cmp.Compare(x.key, y.key)
	})
	if len(cands) > maxCandidates {
		cands = cands[:maxCandidates]
	}
	// Which candidate, if any, grants each edge: computed once, so each
	// search compares integers.
	owner := make([]int32, g.nEdges)
	index := make(map[string]int32, len(cands))
	for i, c := range cands {
		index[c.key] = int32(i)
	}
	for i := range int32(g.nEdges) {
		owner[i] = -1
		if gr := g.at(i).grant; gr != nil {
			if j, ok := index[keyOf(gr.Binding)]; ok {
				owner[i] = j
			}
		}
	}
	// Removing a binding can only close a path whose shortest path uses it,
	// so each search asks about those subjects alone and stops once it has
	// reached them all.
	cut := searchResult{dist: make([]int32, len(g.names)), next: make([]int32, len(g.names))}
	until := &targets{mark: make([]int32, len(g.names))}
	var queue []int
	for ci, c := range cands {
		removed := int32(ci)
		until.stamp, until.left = int32(ci+1), 0
		for _, i := range c.users {
			if until.mark[paths[i].node] != until.stamp {
				until.mark[paths[i].node] = until.stamp
				until.left++
			}
		}
		queue = g.searchInto(&cut, queue, admin, func(ei int32) bool { return owner[ei] == removed }, true, until)
		for _, i := range c.users {
			if cut.dist[paths[i].node] < 0 {
				c.closes = append(c.closes, i)
			}
		}
		slices.Sort(c.closes)
	}
	byBinding := map[string][]*rules.Grant{}
	for _, gr := range a.Grants() {
		k := keyOf(gr.Binding)
		if _, ok := index[k]; ok {
			byBinding[k] = append(byBinding[k], gr)
		}
	}
	// Greedy set cover: the binding closing the most paths not yet closed,
	// then the most paths in all, then by key.
	covered := make([]bool, len(paths))
	var out []*secureauditv1.ChokePoint
	for {
		var best *candidate
		bestNew := 0
		for _, c := range cands {
			n := 0
			for _, i := range c.closes {
				if !covered[i] {
					n++
				}
			}
			if n > bestNew || (n == bestNew && n > 0 && len(c.closes) > len(best.closes)) {
				best, bestNew = c, n
			}
		}
		if best == nil {
			break
		}
		cp := &secureauditv1.ChokePoint{
			Binding:    proto.CloneOf(best.grant.Binding),
			Role:       proto.CloneOf(best.grant.Role),
			TotalPaths: uint32(len(paths)),
			Costs:      costs(byBinding[best.key]),
			Command:    deleteCommand(best.grant.Binding),
		}
		for _, i := range best.closes {
			id := paths[i].finding.GetId()
			cp.FindingIds = append(cp.FindingIds, id)
			if !covered[i] {
				covered[i] = true
				cp.Grouped = append(cp.Grouped, id)
			}
		}
		out = append(out, cp)
		if len(out) == 1000 {
			break
		}
	}
	return out
}

// deleteCommand removes a binding, exactly as it runs.
func deleteCommand(b *secureauditv1.BindingRef) string {
	if b.GetKind() == secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING {
		return "kubectl -n " + rules.Quote(b.GetNamespace()) + " delete rolebinding " + rules.Quote(b.GetName())
	}
	return "kubectl delete clusterrolebinding " + rules.Quote(b.GetName())
}

// costCaps are the capabilities a removal's cost names, most dangerous
// first.
var costCaps = []rules.Capability{
	rules.CapSecretsRead, rules.CapPodCreate, rules.CapWorkloadWrite, rules.CapExec, rules.CapEphemeral,
	rules.CapTokenCreate, rules.CapImpersonateUsers, rules.CapImpersonateGroups, rules.CapImpersonateServiceAccounts,
	rules.CapBind, rules.CapEscalateClusterRoles, rules.CapRBACWrite, rules.CapCreateBindings, rules.CapCreateClusterRoleBindings,
	rules.CapNodesProxy, rules.CapCSRApproval, rules.CapSignersApprove, rules.CapWebhookWrite, rules.CapSecretsWrite, rules.CapPVCreate,
}

// costs says who loses what when the binding is removed: each subject of
// the binding (its grants) with the dangerous capabilities it gives.
func costs(grants []*rules.Grant) []*secureauditv1.RemovalCost {
	var out []*secureauditv1.RemovalCost
	for _, gr := range grants {
		sub := gr.Subject
		c := &secureauditv1.RemovalCost{Subject: &secureauditv1.SubjectRef{Kind: sub.GetKind(), Name: sub.GetName(), Namespace: sub.GetNamespace()}}
		if _, ok := gr.FullAdmin(); ok {
			c.Capabilities = append(c.Capabilities, "every verb on every resource")
		} else {
			for _, cp := range costCaps {
				if e, ok := gr.Has(cp); ok && !slices.Contains(c.Capabilities, e.Granted) && len(c.Capabilities) < 64 {
					c.Capabilities = append(c.Capabilities, clipTo(e.Granted, 256))
				}
			}
		}
		out = append(out, c)
		if len(out) == 1000 {
			break
		}
	}
	return out
}
