package paths

import (
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// Group names the graph expands.
const (
	groupMasters       = "system:masters"
	groupAuthenticated = "system:authenticated"
	groupAllSAs        = "system:serviceaccounts"
	groupSAPrefix      = "system:serviceaccounts:"
	signerClient       = "kubernetes.io/kube-apiserver-client"
)

// legacySecretAssumption is what reading Secrets needs to reach a
// ServiceAccount: a token Secret of it must exist, which the snapshot
// cannot show (the audit never reads Secrets) and which Kubernetes no
// longer creates by itself since 1.24.
const legacySecretAssumption = "a legacy token Secret of a ServiceAccount there exists (none is created automatically since Kubernetes 1.24, and the audit never reads Secrets)"

// build turns the grants into the escalation graph. Only subjects of
// bindings (and of grants through Azure, az) get nodes: a subject without
// grants leads nowhere.
func build(a *rules.Analysis, az *azure) *graph {
	g := newGraph()
	s := a.Snapshot()
	admin := g.node(adminKey, "cluster-admin", nil)
	var saNodes []int // ServiceAccount subject nodes, in grant order
	var userNodes []int
	grants := a.Grants()
	var assume map[*rules.Grant]string // what a grant's every step assumes (an eligible assignment's activation)
	if az != nil {
		grants = append(slices.Clone(grants), az.grants...)
		assume = az.assume
		g.assignments = az.assignments
	}
	g.grants = grants
	g.grantNode = make([]int, len(grants))
	for i, gr := range grants {
		key, sub := subjectKey(gr.Subject)
		if id, ok := g.lookup(key); ok {
			g.grantNode[i] = id
			continue
		}
		id := g.node(key, rules.SubjectText(sub), sub)
		g.grantNode[i] = id
		switch sub.GetKind() {
		case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
			saNodes = append(saNodes, id)
		case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
			userNodes = append(userNodes, id)
		}
	}
	anySA := func() int { return g.node(anySAKey, "any ServiceAccount", nil) }
	anyPods := func() int { return g.node(anyPodKey, "any running pod's ServiceAccount", nil) }
	anyUser := func() int { return g.node(anyUserKey, "any user", nil) }

	// edge adds a step of a grant, conditional on what the grant assumes.
	edge := func(from, to int, text string, gr *rules.Grant, rs []*secureauditv1.PolicyRule) {
		g.conditional(from, to, text, assume[gr], gr, rs)
	}
	for i, gr := range grants {
		if gr.Role.GetMissing() {
			continue
		}
		u := g.grantNode[i]
		sub := g.subj[u]
		ns := gr.Namespace
		cluster := ns == ""
		where := "every namespace"
		if !cluster {
			where = "namespace " + ns
		}
		saTarget := func() int {
			if cluster {
				return anySA()
			}
			return g.node(saOf(ns), "any ServiceAccount of namespace "+ns, nil)
		}
		podsTarget := func() int {
			if cluster {
				return anyPods()
			}
			return g.node(podsOf(ns), "any running pod's ServiceAccount in namespace "+ns, nil)
		}
		if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP && sub.GetName() == groupMasters {
			edge(u, admin, "is system:masters, which bypasses RBAC", gr, nil)
		}
		if rs, ok := gr.FullAdmin(); ok && cluster {
			edge(u, admin, "holds every verb on every resource cluster-wide", gr, rs)
			continue
		}
		if e, ok := gr.Has(rules.CapPodCreate); ok {
			edge(u, saTarget(), "can create pods in "+where+" that run as any ServiceAccount there", gr, e.Rules)
		}
		if e, ok := gr.Has(rules.CapWorkloadWrite); ok && e.Names == nil {
			edge(u, saTarget(), "can write workloads in "+where+" whose pods run as any ServiceAccount there ("+e.Granted+")", gr, e.Rules)
		}
		if e, ok := gr.Has(rules.CapTokenCreate); ok {
			named(g, edge, u, e, cluster, ns, saTarget, "can mint a token (create serviceaccounts/token) for any ServiceAccount in "+where, "can mint a token for", gr)
		}
		if e, ok := gr.Has(rules.CapImpersonateServiceAccounts); ok {
			named(g, edge, u, e, cluster, ns, saTarget, "can impersonate any ServiceAccount in "+where, "can impersonate", gr)
		}
		if e, ok := gr.Has(rules.CapSecretsRead); ok && e.Names == nil {
			if w, ok := gr.Has(rules.CapSecretsWrite); ok && w.Names == nil && strings.Contains(w.Granted, "create") {
				// A Secret of type kubernetes.io/service-account-token
				// annotated with a ServiceAccount's name is filled with its
				// token by the token controller: no existing object needed.
				edge(u, saTarget(), "can create a token Secret for any ServiceAccount in "+where+" and read the token back ("+w.Granted+", "+e.Granted+")", gr, join(e.Rules, w.Rules))
			} else {
				g.conditional(u, saTarget(), "can read Secrets in "+where+", including legacy token Secrets of its ServiceAccounts",
					both(legacySecretAssumption, assume[gr]), gr, e.Rules)
			}
		}
		if e, ok := gr.Has(rules.CapExec); ok && e.Names == nil {
			edge(u, podsTarget(), "can exec or attach into pods in "+where+" and use their tokens ("+e.Granted+")", gr, e.Rules)
		}
		if e, ok := gr.Has(rules.CapEphemeral); ok && e.Names == nil {
			edge(u, podsTarget(), "can inject ephemeral containers into pods in "+where+" and use their tokens", gr, e.Rules)
		}
		if e, ok := gr.Has(rules.CapNodesProxy); ok {
			edge(u, anyPods(), "can run commands in any pod through the kubelet API (nodes/proxy)", gr, e.Rules)
		}
		if b, ok := gr.Has(rules.CapBind); ok && powerful(b.Names) {
			if c, ok := gr.Has(rules.CapCreateClusterRoleBindings); ok {
				edge(u, admin, "can bind cluster-admin to itself ("+b.Granted+", "+c.Granted+")", gr, join(b.Rules, c.Rules))
			} else if c, ok := gr.Has(rules.CapCreateBindings); ok {
				edge(u, saTarget(), "can bind an admin role in "+where+" to itself and create pods ("+b.Granted+", "+c.Granted+")", gr, join(b.Rules, c.Rules))
			}
		}
		if e, ok := gr.Has(rules.CapEscalateClusterRoles); ok && e.Names == nil {
			if w, ok := gr.Has(rules.CapRBACWrite); ok && strings.Contains(w.Granted, "clusterroles") {
				edge(u, admin, "can escalate: rewrite a ClusterRole bound to it to grant everything ("+e.Granted+", "+w.Granted+")", gr, join(e.Rules, w.Rules))
			}
		}
		if e, ok := gr.Has(rules.CapImpersonateGroups); ok && (e.Names == nil || slices.Contains(e.Names, groupMasters)) {
			edge(u, admin, "can impersonate the group system:masters", gr, e.Rules)
		}
		if e, ok := gr.Has(rules.CapImpersonateUsers); ok {
			if e.Names == nil {
				edge(u, anyUser(), "can impersonate any user", gr, e.Rules)
				edge(u, anySA(), "can impersonate any ServiceAccount's user (system:serviceaccount:...)", gr, e.Rules)
			} else {
				for _, n := range e.Names {
					key, _ := subjectKey(&secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: n})
					if v, ok := g.lookup(key); ok {
						edge(u, v, "can impersonate it", gr, e.Rules)
					}
				}
			}
		}
		if ap, ok := gr.Has(rules.CapCSRApproval); ok {
			if sg, ok := gr.Has(rules.CapSignersApprove); ok && (sg.Names == nil || slices.Contains(sg.Names, signerClient) || slices.Contains(sg.Names, "kubernetes.io/*")) {
				edge(u, admin, "can approve a CertificateSigningRequest for a client certificate in system:masters ("+ap.Granted+", "+sg.Granted+")", gr, join(ap.Rules, sg.Rules))
			}
		}
	}
	if az != nil {
		az.edges(g, admin, len(a.Grants()))
	}
	expand(g, s, saNodes, userNodes)
	g.index()
	return g
}

// named adds an edge to saTarget, or, when the capability is restricted by
// resourceNames within a namespace, to each named ServiceAccount that is a
// node. A name-restricted cluster-wide grant is left out.
func named(g *graph, edge func(int, int, string, *rules.Grant, []*secureauditv1.PolicyRule), u int, e rules.Evidence, cluster bool, ns string, saTarget func() int, text, textNamed string, gr *rules.Grant) {
	if e.Names == nil {
		edge(u, saTarget(), text, gr, e.Rules)
		return
	}
	if cluster {
		return
	}
	for _, n := range e.Names {
		if v, ok := g.lookup("S/" + ns + "/" + n); ok {
			edge(u, v, textNamed+" it", gr, e.Rules)
		}
	}
}

// both joins two assumptions, either of which may be "".
func both(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; and " + b
}

// powerful reports whether bind restricted to names (nil: unrestricted)
// still reaches an admin role.
func powerful(names []string) bool {
	if names == nil {
		return true
	}
	return slices.ContainsFunc(names, func(n string) bool {
		return n == "cluster-admin" || n == "admin" || n == "edit" || strings.HasPrefix(n, "system:")
	})
}

func join(a, b []*secureauditv1.PolicyRule) []*secureauditv1.PolicyRule {
	out := slices.Clone(a)
	for _, r := range b {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// expand adds the edges from abstract nodes to the subjects they stand
// for, and group membership.
func expand(g *graph, s *snapshot.Snapshot, saNodes, userNodes []int) {
	group := func(name string) (int, bool) { return g.lookup("G/" + name) }
	allSAs, hasAllSAs := group(groupAllSAs)
	authn, hasAuthn := group(groupAuthenticated)
	// members adds a ServiceAccount-like node's group edges.
	members := func(from int, ns, text, assume string) {
		if v, ok := group(groupSAPrefix + ns); ok {
			g.conditional(from, v, text, assume, nil, nil)
		}
		if hasAllSAs {
			g.conditional(from, allSAs, text, assume, nil, nil)
		}
		if hasAuthn {
			g.conditional(from, authn, text, assume, nil, nil)
		}
	}
	byNS := map[string][]int{}
	var namespaces []string
	for _, id := range saNodes {
		ns := g.subj[id].GetNamespace()
		if _, ok := byNS[ns]; !ok {
			namespaces = append(namespaces, ns)
		}
		byNS[ns] = append(byNS[ns], id)
		members(id, ns, "is a member of", "")
	}
	for _, id := range userNodes {
		if hasAuthn {
			g.edge(id, authn, "is a member of", nil, nil)
		}
	}
	for _, ns := range namespaces {
		if v, ok := g.lookup(saOf(ns)); ok {
			for _, id := range byNS[ns] {
				g.edge(v, id, "includes", nil, nil)
			}
		}
	}
	for id, k := range g.keys {
		if ns, ok := strings.CutPrefix(k, "!sa:"); ok {
			members(id, ns, "includes members of", "")
		}
	}
	if v, ok := g.lookup(anySAKey); ok {
		for _, id := range saNodes {
			g.edge(v, id, "includes", nil, nil)
		}
		if hasAllSAs {
			g.edge(v, allSAs, "includes members of", nil, nil)
		}
		if hasAuthn {
			g.edge(v, authn, "includes members of", nil, nil)
		}
	}
	if v, ok := g.lookup(anyUserKey); ok {
		for _, id := range userNodes {
			g.edge(v, id, "includes", nil, nil)
		}
		if hasAuthn {
			g.edge(v, authn, "includes members of", nil, nil)
		}
	}
	// Running pods that hold a ServiceAccount's token (automounted,
	// projected, or a legacy token Secret mounted by name): one edge per
	// (namespace, ServiceAccount, way the token arrives), naming the first
	// pod. A token whose use needs an assumption gives a conditional edge,
	// kept only while no pod proves the same ServiceAccount's token.
	type hold struct {
		ns, sa string
		proven bool
	}
	seen := map[hold]bool{}
	var tokens []snapshot.Token
	for _, w := range s.Workloads() {
		if w.GetKind() != "Pod" {
			continue
		}
		ns := w.GetMeta().GetNamespace()
		tokens = s.AppendTokens(tokens[:0], w)
		for _, t := range tokens {
			assume := t.Assumption()
			h := hold{ns: ns, sa: t.ServiceAccount, proven: assume == ""}
			if seen[h] || seen[hold{ns: ns, sa: t.ServiceAccount, proven: true}] {
				continue
			}
			seen[h] = true
			text := "runs Pod " + w.GetMeta().GetName() + ", which holds the token through " + t.Text() + ", as"
			sa, isSubject := g.lookup("S/" + ns + "/" + t.ServiceAccount)
			for _, key := range []string{podsOf(ns), anyPodKey} {
				v, ok := g.lookup(key)
				if !ok {
					continue
				}
				if isSubject {
					g.conditional(v, sa, text, assume, nil, nil)
				} else {
					members(v, ns, text+" ServiceAccount "+t.ServiceAccount+", a member of", assume)
				}
			}
		}
	}
}
