// Package paths finds privilege-escalation paths: a graph from subjects
// through the capabilities their grants give them (create pods in a
// namespace, mint a token, read legacy token Secrets, exec into a pod, bind
// or escalate a role, impersonate, approve a CSR, proxy to the kubelet) to
// the subjects those capabilities let them become, and on to
// cluster-admin. Each subject that can reach cluster-admin is reported once,
// with its shortest path and the evidence of every step. The search is a
// single breadth-first pass backwards from cluster-admin over a graph
// linear in the size of the snapshot: pure, bounded and deterministic.
package paths

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// RuleID is the rule ID of escalation-path findings.
const RuleID = "PATH-001"

// MaxSteps bounds the length of a reported path.
const MaxSteps = 8

// Rule is PATH-001 from the registry.
var Rule = registry.MustLookup(RuleID)

// edge is one step: from a node to another, because of a grant.
type edge struct {
	from, to int
	text     string // what the step does
	grant    *rules.Grant
	rules    []*secureauditv1.PolicyRule
	// assume is what the step needs that the snapshot cannot show; "" for
	// a proven step.
	assume string
}

// graph is the escalation graph. Nodes are subjects and a few abstract
// targets ("any ServiceAccount of namespace N", "cluster-admin").
type graph struct {
	ids   map[string]int
	keys  []string
	names []string
	subj  []*secureauditv1.Subject // nil for abstract nodes
	// edges are stored in chunks of edgeChunk, so that adding one never
	// copies the others (see at).
	edges  [][]edge
	nEdges int
	// grants are the analysis's grants, then those through Azure;
	// grantNode is the subject node of each, by index.
	grants    []*rules.Grant
	grantNode []int
	// assignments are the Azure role assignments behind the grants through
	// Azure (eligible ones under PIM included).
	assignments map[*rules.Grant]*secureauditv1.AzureRoleAssignment
	// in holds the edge indexes by target, in edge order: those of node v
	// are in[inStart[v]:inStart[v+1]]. index fills both once every edge is
	// added.
	in      []int32
	inStart []int32
}

func newGraph() *graph { return &graph{ids: map[string]int{}} }

func (g *graph) node(key, name string, sub *secureauditv1.Subject) int {
	if id, ok := g.ids[key]; ok {
		return id
	}
	id := len(g.names)
	g.ids[key] = id
	g.keys = append(g.keys, key)
	g.names = append(g.names, name)
	g.subj = append(g.subj, sub)
	return id
}

func (g *graph) lookup(key string) (int, bool) {
	id, ok := g.ids[key]
	return id, ok
}

func (g *graph) edge(from, to int, text string, gr *rules.Grant, rs []*secureauditv1.PolicyRule) {
	g.conditional(from, to, text, "", gr, rs)
}

// conditional adds an edge that holds only when assume does ("" for a
// proven edge).
func (g *graph) conditional(from, to int, text, assume string, gr *rules.Grant, rs []*secureauditv1.PolicyRule) {
	if from == to {
		return
	}
	if g.nEdges%edgeChunk == 0 {
		g.edges = append(g.edges, make([]edge, 0, edgeChunk))
	}
	last := &g.edges[len(g.edges)-1]
	*last = append(*last, edge{from: from, to: to, text: text, grant: gr, rules: rs, assume: assume})
	g.nEdges++
}

// edgeChunk is the number of edges per chunk of graph.edges.
const edgeChunk = 1024

// at returns edge i, in the order edges were added.
func (g *graph) at(i int32) *edge { return &g.edges[i/edgeChunk][i%edgeChunk] }

// index builds the edge lists by target (a counting sort of the edges by
// target, which keeps each list in edge order) once every edge is added.
func (g *graph) index() {
	start := make([]int32, len(g.names)+1)
	for i := range int32(g.nEdges) {
		start[g.at(i).to+1]++
	}
	for v := range len(g.names) {
		start[v+1] += start[v]
	}
	in := make([]int32, g.nEdges)
	fill := slices.Clone(start[:len(g.names)])
	for i := range int32(g.nEdges) {
		to := g.at(i).to
		in[fill[to]] = i
		fill[to]++
	}
	g.in, g.inStart = in, start
}

// edgesTo returns the indexes of the edges into node v, in edge order.
func (g *graph) edgesTo(v int) []int32 { return g.in[g.inStart[v]:g.inStart[v+1]] }

// Abstract node keys.
const (
	adminKey   = "!admin"
	anySAKey   = "!sa"
	anyPodKey  = "!pods"
	anyUserKey = "!users"
)

func saOf(ns string) string   { return "!sa:" + ns }
func podsOf(ns string) string { return "!pods:" + ns }

// subjectKey identifies a subject node. A user named
// system:serviceaccount:<ns>:<name> is that ServiceAccount.
func subjectKey(s *secureauditv1.Subject) (string, *secureauditv1.Subject) {
	switch s.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return "S/" + s.GetNamespace() + "/" + s.GetName(), s
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return "G/" + s.GetName(), s
	}
	if rest, ok := strings.CutPrefix(s.GetName(), "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			return subjectKey(&secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: ns, Name: name})
		}
	}
	return "U/" + s.GetName(), s
}

// Result is what the path analysis finds: one PATH-001 finding per
// subject that can reach cluster-admin, and the choke points among the
// bindings of the proven paths.
type Result struct {
	Findings    []*secureauditv1.Finding
	ChokePoints []*secureauditv1.ChokePoint
}

// Find returns the PATH-001 findings of Analyze.
func Find(a *rules.Analysis) []*secureauditv1.Finding { return Analyze(a).Findings }

// Analyze returns one PATH-001 finding for every subject of a binding that
// can reach cluster-admin in at most MaxSteps steps and is not already
// cluster-admin through a direct grant, in the order rules.Sort gives: a
// proven path when there is one, else a conditional path (a step needs an
// object the snapshot cannot show), rated lower. Then the choke points:
// the bindings whose removal closes the most proven paths (see chokePoints).
func Analyze(a *rules.Analysis) Result { return AnalyzeWithAzure(a, nil) }

// AnalyzeWithAzure is Analyze with the routes into an AKS cluster through
// Azure that the directory's chunks show (see azure): paths may start from
// an Azure role assignment ("Contributor on the resource group ->
// listClusterAdminCredential -> system:masters"), each step stating what
// the cluster's configuration makes true (local accounts enabled) and an
// eligible assignment's path conditional on its activation. Without an AKS
// cluster in dir it is Analyze. Choke points stay among the bindings.
func AnalyzeWithAzure(a *rules.Analysis, dir []*secureauditv1.DirectoryChunk) Result {
	az := azureOf(a, dir)
	g := build(a, az)
	admin, ok := g.lookup(adminKey)
	if !ok {
		return Result{}
	}
	proven := g.search(admin, nil, true)
	all := g.search(admin, nil, false)
	var out []*secureauditv1.Finding
	var subjects []provenPath
	seen := make([]bool, len(g.names))
	for i := range g.grants {
		u := g.grantNode[i]
		if seen[u] {
			continue
		}
		seen[u] = true
		sp := proven
		if proven.dist[u] <= 0 {
			sp = all
		}
		if sp.dist[u] <= 0 {
			continue
		}
		first := g.at(sp.next[u])
		if first.to == admin && direct(first) {
			continue // already cluster-admin: RBAC-001 and RBAC-008 say so
		}
		if first.grant == nil {
			continue // only through a group, whose own finding shows the path
		}
		f := g.finding(a.Snapshot(), u, sp.next, admin)
		if az != nil {
			f.GrantKey = az.keys[first.grant] // one report entry with AKS-008
		}
		out = append(out, f)
		if !f.GetConditional() && !f.GetInfrastructure() && !azureBinding(first.grant.Binding) {
			subjects = append(subjects, provenPath{node: u, finding: f})
		}
	}
	rules.Sort(out)
	return Result{Findings: out, ChokePoints: g.chokePoints(a, admin, proven, subjects)}
}

// searchResult is a backward breadth-first search from cluster-admin: the
// distance of every node (-1: cannot reach it) and the first edge of a
// shortest path from it.
type searchResult struct {
	dist []int32
	next []int32
}

// search runs the backward search over the proven edges only (provenOnly)
// or all edges, skipping the edges cut says to.
func (g *graph) search(admin int, cut func(ei int32) bool, provenOnly bool) searchResult {
	r := searchResult{dist: make([]int32, len(g.names)), next: make([]int32, len(g.names))}
	g.searchInto(&r, nil, admin, cut, provenOnly, nil)
	return r
}

// searchInto is search writing into r's slices (of the graph's size) and
// using queue's storage, so repeated searches allocate nothing. When
// until is set, the search stops as soon as it has reached every node
// until reports true for (the nodes it counts), since the caller only asks
// about those.
func (g *graph) searchInto(r *searchResult, queue []int, admin int, cut func(ei int32) bool, provenOnly bool, until *targets) []int {
	dist, next := r.dist, r.next
	for i := range dist {
		dist[i] = -1
	}
	dist[admin] = 0
	queue = append(queue[:0], admin)
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		if dist[v] >= MaxSteps {
			continue
		}
		for _, ei := range g.edgesTo(v) {
			e := g.at(ei)
			if (provenOnly && e.assume != "") || (cut != nil && cut(ei)) {
				continue
			}
			u := e.from
			if dist[u] < 0 {
				dist[u] = dist[v] + 1
				next[u] = ei
				queue = append(queue, u)
				if until != nil && until.reached(u) {
					return queue
				}
			}
		}
	}
	return queue
}

// targets are the nodes a search must reach before it may stop early.
type targets struct {
	mark  []int32 // mark[node] == stamp: a target not yet reached
	stamp int32
	left  int
}

// reached records that node u was reached and reports whether every
// target now has been.
func (t *targets) reached(u int) bool {
	if t.mark[u] == t.stamp {
		t.mark[u] = 0
		t.left--
	}
	return t.left == 0
}

// direct reports whether an edge is a plain cluster-admin grant.
func direct(e *edge) bool {
	return strings.HasPrefix(e.text, "holds every verb") || strings.HasPrefix(e.text, "is system:masters")
}

func (g *graph) finding(s *snapshot.Snapshot, u int, next []int32, admin int) *secureauditv1.Finding {
	var steps []string
	var path []*secureauditv1.PathStep
	var assumptions []string
	var first *edge
	for v, i := u, 0; v != admin; i++ {
		e := g.at(next[v])
		if i == 0 {
			first = e
		}
		step := fmt.Sprintf("%d. %s --[%s", i+1, g.names[e.from], e.text)
		if e.grant != nil {
			step += " (via " + rules.BindingText(e.grant.Binding) + ", " + roleText(e.grant.Role) + ")"
		}
		if e.assume != "" {
			step += " (conditional: assumes " + e.assume + ")"
			assumptions = append(assumptions, fmt.Sprintf("step %d assumes %s", i+1, e.assume))
		}
		step += "]--> " + g.names[e.to]
		steps = append(steps, step)
		ps := &secureauditv1.PathStep{From: clip(g.names[e.from]), Capability: clip(e.text), To: clip(g.names[e.to]), Assumption: clip(e.assume)}
		if e.grant != nil {
			ps.Binding, ps.Role = proto.CloneOf(e.grant.Binding), proto.CloneOf(e.grant.Role)
			ps.Rules = cloneRules(e.rules)
		}
		path = append(path, ps)
		v = e.to
	}
	sub := g.subj[u]
	gr := first.grant
	// The path starts with a grant: it is platform-managed when that grant
	// is (the risk-agent's one decision, rules.Grant.PlatformManaged).
	_, infra := gr.PlatformManaged()
	scope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	if gr.Namespace != "" {
		scope = &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: gr.Namespace}
	}
	n := stepCount(len(steps))
	desc := Rule.Rationale + " Path (" + n + "): " + strings.Join(steps, "; ") + "."
	severity, reason := Rule.Severity, fmt.Sprintf("base CRITICAL (reaches cluster-admin in %s)", n)
	if len(assumptions) > 0 {
		severity = secureauditv1.Severity_SEVERITY_HIGH
		reason = fmt.Sprintf("base CRITICAL, lowered to HIGH: a conditional path (reaches cluster-admin in %s only if %s)", n, strings.Join(assumptions, "; "))
		desc = "Conditional: " + strings.Join(assumptions, "; ") + ". " + desc
	}
	fix := remediation(gr, sub)
	if azureBinding(gr.Binding) {
		fix = azureRemediation(gr, sub, g.assignments[gr])
	}
	f := Rule.Finding(registry.Hit{
		ID:             rules.FindingID(RuleID, gr.Binding, sub, gr.Role),
		Severity:       severity,
		SeverityReason: reason,
		Scope:          scope,
		Description:    desc,
		Remediation:    fix,
	})
	f.Subject = s.SubjectRef(sub)
	f.Binding = proto.CloneOf(gr.Binding)
	f.Role = proto.CloneOf(gr.Role)
	f.MatchedRules = cloneRules(first.rules)
	f.Infrastructure = infra
	f.Path = path
	f.Conditional = len(assumptions) > 0
	return f
}

// remediation breaks the path at its first step: the prose first, then one
// command per line, each of which runs as written.
func remediation(gr *rules.Grant, sub *secureauditv1.Subject) string {
	role := "kubectl edit clusterrole " + rules.Quote(gr.Role.GetName())
	if gr.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		role = "kubectl -n " + rules.Quote(gr.Role.GetNamespace()) + " edit role " + rules.Quote(gr.Role.GetName())
	}
	binding := "kubectl edit clusterrolebinding " + rules.Quote(gr.Binding.GetName())
	if gr.Binding.GetKind() == secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING {
		binding = "kubectl -n " + rules.Quote(gr.Binding.GetNamespace()) + " edit rolebinding " + rules.Quote(gr.Binding.GetName())
	}
	return Rule.Remediation + " Remove what step 1 uses from " + roleText(gr.Role) + ", or remove " +
		rules.SubjectText(sub) + " from " + rules.BindingText(gr.Binding) + "; the commands below open each for editing.\n" + role + "\n" + binding
}

func cloneRules(rs []*secureauditv1.PolicyRule) []*secureauditv1.PolicyRule {
	if len(rs) > 1000 {
		rs = rs[:1000]
	}
	out := make([]*secureauditv1.PolicyRule, len(rs))
	for i, r := range rs {
		out[i] = proto.CloneOf(r)
	}
	return out
}

// clip bounds a path step's text to the contract's 1024 bytes, on a rune
// boundary.
func clip(s string) string { return clipTo(s, 1024) }

// clipTo bounds s to n bytes, on a rune boundary.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for len(s) > 0 && !utf8.RuneStart(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "") + "..."
}

func roleText(r *secureauditv1.FindingRole) string {
	switch r.GetKind() {
	case secureauditv1.RoleKind_ROLE_KIND_ROLE:
		return "Role " + r.GetNamespace() + "/" + r.GetName()
	case secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE:
		return "Azure role " + r.GetName()
	}
	return "ClusterRole " + r.GetName()
}

// stepCount writes a path's length: "1 step", "3 steps".
func stepCount(n int) string {
	if n == 1 {
		return "1 step"
	}
	return fmt.Sprintf("%d steps", n)
}
