package render

import (
	"fmt"
	"google.golang.org/protobuf/proto"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// stepView is one step of an escalation path as the reader sees it: what
// it does, the grant behind it with that role's rules only, and what it
// assumes when the snapshot cannot prove it.
type stepView struct {
	From, Capability, To string
	Binding, Role        string
	Granted              bool
	// Own marks a step granted through the finding's own binding, whose
	// rules the finding shows; the rules of another grant are shown in
	// that grant's entry.
	Own        bool
	Assumption string
	Rules      []*secureauditv1.PolicyRule
}

func newSteps(f *secureauditv1.Finding) []stepView {
	var out []stepView
	for _, p := range f.GetPath() {
		st := stepView{From: p.GetFrom(), Capability: p.GetCapability(), To: p.GetTo(), Assumption: p.GetAssumption(), Rules: p.GetRules()}
		if p.GetBinding() != nil {
			st.Granted, st.Binding, st.Role = true, bindingText(p.GetBinding()), roleText(p.GetRole())
			st.Own = proto.Equal(p.GetBinding(), f.GetBinding())
		}
		out = append(out, st)
	}
	return out
}

// conditional reports whether a finding rests on an assumption the
// snapshot cannot prove.
func conditional(f *secureauditv1.Finding) bool {
	if f.GetConditional() {
		return true
	}
	for _, p := range f.GetPath() {
		if p.GetAssumption() != "" {
			return true
		}
	}
	return false
}

// chokeView is a choke point: a binding whose removal closes proven
// escalation paths, with the paths grouped under it and what removing it
// costs.
type chokeView struct {
	Number  int
	Anchor  string
	Binding string
	Role    string
	Closes  int
	Total   int
	// Paths are the path findings grouped under this choke point; Also the
	// numbers of those it closes that an earlier choke point groups.
	Paths   []*findingView
	Also    []int
	Costs   []costView
	Command string
	// Components is true when every subject of the binding that loses a
	// capability is the workload identity of an installed component: the
	// binding is then narrowed, not revoked.
	Components bool
}

// costView is what one subject loses when a choke point is removed.
type costView struct {
	Subject      string
	Capabilities string
}

// Text is the choke point's headline sentence.
func (c chokeView) Text() string {
	return fmt.Sprintf("Removing %s (%s) closes %d of %d proven escalation %s to cluster-admin", c.Binding, c.Role, c.Closes, c.Total, plural(c.Total, "path", "paths"))
}

// CostText says who loses what, in one line.
func (c chokeView) CostText() string {
	if len(c.Costs) == 0 {
		return "no subject of the binding loses a capability of note"
	}
	parts := make([]string, len(c.Costs))
	for i, x := range c.Costs {
		parts[i] = x.Subject + " loses " + x.Capabilities
	}
	return strings.Join(parts, "; ")
}

// newChoke turns the report's choke points into views, keeping the paths
// of main findings only, and returns the path findings no choke point
// groups, in report order.
func newChoke(cps []*secureauditv1.ChokePoint, byID map[string]*findingView, paths []*findingView, components map[string]bool) ([]chokeView, []*findingView) {
	var out []chokeView
	grouped := map[string]bool{}
	for _, cp := range cps {
		c := chokeView{
			Binding: bindingText(cp.GetBinding()),
			Role:    roleText(cp.GetRole()),
			Total:   int(cp.GetTotalPaths()),
			Command: cp.GetCommand(),
		}
		for _, id := range cp.GetFindingIds() {
			if _, ok := byID[id]; ok {
				c.Closes++
			}
		}
		if c.Closes == 0 {
			continue
		}
		in := map[string]bool{}
		for _, id := range cp.GetGrouped() {
			if f, ok := byID[id]; ok && !grouped[id] {
				grouped[id], in[id] = true, true
				c.Paths = append(c.Paths, f)
			}
		}
		for _, id := range cp.GetFindingIds() {
			if f, ok := byID[id]; ok && !in[id] {
				c.Also = append(c.Also, f.Number)
			}
		}
		slices.SortFunc(c.Paths, func(a, b *findingView) int { return a.Number - b.Number })
		slices.Sort(c.Also)
		c.Also = slices.Compact(c.Also) // hits of one entry share its number
		c.Components = len(cp.GetCosts()) > 0
		for _, x := range cp.GetCosts() {
			c.Components = c.Components && components[subjectKey(x.GetSubject())]
			caps := "no capability of note"
			if len(x.GetCapabilities()) > 0 {
				caps = strings.Join(x.GetCapabilities(), ", ")
			}
			c.Costs = append(c.Costs, costView{Subject: subjectText(x.GetSubject()), Capabilities: caps})
		}
		c.Number = len(out) + 1
		c.Anchor = fmt.Sprintf("choke-%d", c.Number)
		out = append(out, c)
	}
	var rest []*findingView
	for _, f := range paths {
		if !grouped[f.ID] {
			rest = append(rest, f)
		}
	}
	return out, rest
}

// headline chooses the report's most important issue from the proven
// findings: the choke point closing the most paths when it closes more
// than one; else, among the most severe proven findings, a person (a user
// or group) holding cluster-admin; else the first proven finding. A
// conditional finding is never the headline.
func headline(findings []*findingView, choke []chokeView) (*findingView, *chokeView) {
	var top *findingView
	for _, f := range findings {
		if f.Conditional {
			continue
		}
		if top == nil {
			top = f
			continue
		}
		if f.severity != top.severity {
			break
		}
		if personAdmin(f) && !personAdmin(top) {
			top = f
			break
		}
	}
	var tc *chokeView
	if len(choke) > 0 && choke[0].Closes > 1 {
		tc = &choke[0]
	}
	if top == nil {
		return nil, tc
	}
	t := *top
	return &t, tc
}

// personAdmin reports whether a finding is a person (a user or a group of
// people, not an application bound as a User) holding cluster-admin
// cluster-wide.
func personAdmin(f *findingView) bool {
	person := (f.kind == secureauditv1.SubjectKind_SUBJECT_KIND_USER && !f.app) || f.kind == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
	return person && f.Cluster && (f.RuleID == "RBAC-001" || f.Role == "ClusterRole cluster-admin")
}

// pivot is the choke point a path finding is grouped under.
type pivot struct {
	number int
	cp     *secureauditv1.ChokePoint
	closes int
}

// pivotsOf maps each main path finding a choke point groups to it, numbered
// as newChoke numbers them.
func pivotsOf(r *secureauditv1.Report) map[string]pivot {
	main := map[string]bool{}
	for _, f := range r.GetFindings() {
		main[f.GetId()] = true
	}
	out := map[string]pivot{}
	n := 0
	for _, cp := range r.GetChokePoints() {
		closes := 0
		for _, id := range cp.GetFindingIds() {
			if main[id] {
				closes++
			}
		}
		if closes == 0 {
			continue
		}
		n++
		for _, id := range cp.GetGrouped() {
			if _, done := out[id]; main[id] && !done {
				out[id] = pivot{number: n, cp: cp, closes: closes}
			}
		}
	}
	return out
}

// fix puts the choke point's removal first in a grouped path's fix, when
// it closes other paths too: one command then does the work of many.
func (p pivot) fix(fx fixView) fixView {
	if p.closes < 2 || !Runnable(p.cp.GetCommand()) {
		return fx
	}
	out := fixView{Prose: []string{fmt.Sprintf("Removing %s (choke point %d) closes this path and %d %s: the delete command below does it, once the owners of what the binding grants agree (see the choke point's cost). For this path alone:",
		bindingText(p.cp.GetBinding()), p.number, p.closes-1, plural(p.closes-1, "other", "others"))}}
	out.Prose = append(out.Prose, fx.Prose...)
	out.Commands = append([]string{p.cp.GetCommand()}, fx.Commands...)
	return out
}
