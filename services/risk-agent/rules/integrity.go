package rules

import (
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// aggregateLabel is the label prefix that aggregates a ClusterRole into a
// built-in role (rbac.authorization.k8s.io/aggregate-to-admin and so on).
const aggregateLabel = "rbac.authorization.k8s.io/aggregate-to-"

// integrity runs the rules about roles rather than grants: bootstrap roles
// widened beyond the upstream bootstrap policy (RBAC-035), roles aggregated
// into admin, edit or view (RBAC-036), and dangerous roles bound to nobody
// (RBAC-037).
func integrity(a *Analysis, ctrl []controllerEntry) []*draft {
	s := a.snap
	var out []*draft
	clusterRoles := s.ClusterRoles()
	// source maps each own rule to the ClusterRole that defines it, to name
	// the contributor of an aggregated rule.
	source := map[*secureauditv1.PolicyRule]string{}
	for _, cr := range clusterRoles {
		for _, r := range cr.GetRules() {
			source[r] = cr.GetMeta().GetName()
		}
	}
	clusterRef := func(name string) *secureauditv1.FindingRole {
		return &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: name}
	}

	// RBAC-036, first: RBAC-035 leaves out of a built-in role what these
	// findings already report.
	var agg []*draft
	reported := map[string]bool{} // ClusterRoles with an RBAC-036 finding
	for _, cr := range clusterRoles {
		name := cr.GetMeta().GetName()
		// Only the bootstrap policy's roles are built in: a role merely
		// named system:... is judged, since anyone can name a role so.
		if _, builtin := upstream(name); builtin {
			continue
		}
		var into []string
		for _, b := range aggregates {
			if cr.GetMeta().GetLabels()[aggregateLabel+b] == "true" {
				into = append(into, b)
			}
		}
		if len(into) == 0 {
			continue
		}
		// The widest target decides what counts as extra: admin includes
		// edit includes view (aggregates is widest first).
		// What it contributes is the rules it holds once aggregated (an
		// aggregated role's own rules are replaced by the controller).
		base, _ := upstreamProfile(into[0], a.streamGet)
		baseRules, _ := upstream(into[0])
		held, _ := s.EffectiveClusterRoleRules(name)
		extra, matched := beyond(newProfile(held, false, a.streamGet), base, held)
		// Any write the built-in role lacks counts too, on any API group:
		// every admin, editor or viewer gets it.
		writes, wmatched, inertOnly := extraWrites(held, baseRules)
		if len(extra) == 0 && len(writes) == 0 {
			continue
		}
		adds := widenedList(extra)
		short := widenedSummary(extra)
		sev := ruleByID(AggregatesIntoBuiltin).Severity
		if len(extra) == 0 {
			// Only writes outside the dangerous list (custom resources,
			// ordinary objects): LOW, MEDIUM into view, which is meant to
			// be read-only.
			adds, short, sev = strings.Join(writes, ", "), summaryStrings(writes), low
			if into[0] == "view" {
				sev = medium
			}
		} else if len(writes) > 0 {
			// Writes beyond the dangerous ones already named.
			named := map[string]bool{}
			for _, w := range extra {
				named[writeText(w.verb, w.group, w.resource)] = true
			}
			var more []string
			for _, w := range writes {
				if !named[w] {
					more = append(more, w)
				}
			}
			if len(more) > 0 {
				adds += "; other writes: " + strings.Join(more, ", ")
			}
		}
		// Into admin or edit, which create pods in the namespace already,
		// creating the custom resources that only run pods there (RBAC-020's
		// list) adds nothing dangerous: LOW, like any other write.
		podsOnly := into[0] != "view" && len(extra) > 0 && find(baseRules, false, false, capTargets[CapPodCreate]...).ok() &&
			!slices.ContainsFunc(extra, func(w widened) bool { return !containsTarget(podRunningCRs, w.target) })
		// Writes on the resources of a privileged controller of the
		// snapshot give every admin, editor or viewer its rights (RBAC-041).
		var via []string
		for _, e := range ctrl {
			if m := find(held, false, false, e.targets...); m.ok() && !m.narrow {
				for _, sa := range e.sas {
					v := "ServiceAccount " + sa.ns + "/" + sa.name + " (" + e.c.Group + ")"
					if !slices.Contains(via, v) {
						via = append(via, v)
					}
				}
			}
		}
		reach := ""
		if len(via) > 0 {
			adds += "; the writes reach the rights of the privileged controller " + strings.Join(via, ", ") + " (see RBAC-041)"
			reach = ", reaching a privileged controller"
			sev = high
		}
		d := &draft{
			rule: ruleByID(AggregatesIntoBuiltin), role: clusterRef(name), matched: mergeRules(held, matched, wmatched),
			detail: "Aggregates into " + strings.Join(into, ", ") + " and adds " + adds + ".",
			fix:    unlabelCommand(cr),
		}
		d.ladder = newLadder(sev, "adds "+short+" to "+strings.Join(into, ", ")+reach)
		if podsOnly && reach == "" {
			d.ladder.atMost(low, "the custom resources only run pods in the namespace, which "+into[0]+" already creates")
		}
		// Writes only on custom resources that record results (policy
		// reports: the declared table of inert.json), with nothing
		// dangerous and no controller reached: every admin, editor or
		// viewer may forge or delete a result, which grants no access. An
		// informational hit, kept in report.json and SARIF with its
		// controls, not an entry of the reviewer's list.
		if inertOnly && len(extra) == 0 && reach == "" {
			d.ladder.atMost(info, "writes only result records (policy reports) that no controller acts on")
			d.detail += " Every write is on a custom resource that only records results (" + inertText(held) + "): informational, listed for completeness."
		}
		agg = append(agg, d)
		reported[name] = true
	}

	// RBAC-035: every bootstrap ClusterRole of the snapshot, its effective
	// rules against its effective upstream rules.
	for _, cr := range clusterRoles {
		name := cr.GetMeta().GetName()
		base, ok := upstreamProfile(name, a.streamGet)
		if !ok || reportedThrough(s, cr) != "" {
			continue
		}
		rules, _ := s.EffectiveClusterRoleRules(name)
		extra, matched := beyond(newProfile(rules, false, a.streamGet), base, rules)
		if len(extra) == 0 {
			continue
		}
		// Name each ClusterRole whose rules grant the extras: the role
		// itself, or those aggregated into it. In a live cluster the
		// clusterrole-aggregation controller has copied the aggregated
		// roles' rules into the role, so a rule of its own that a role it
		// aggregates also holds is that role's.
		var aggregated []*secureauditv1.ClusterRole
		if len(cr.GetAggregationSelectors()) > 0 {
			aggregated = aggregatedInto(clusterRoles, cr)
		}
		// A permission that only roles reported by RBAC-036 contribute is
		// that finding's: RBAC-035 keeps what nothing else explains (the
		// role's own extra rules, a built-in contributor's, a rule of a
		// contributor RBAC-036 does not report), and is silent when that
		// is nothing. Both rules carry the same controls.
		from := func(r *secureauditv1.PolicyRule) string {
			if c := source[r]; c != name {
				return c
			}
			return copiedFrom(r, aggregated, name)
		}
		var kept, explained []widened
		for _, w := range extra {
			var by []string
			for _, r := range matched {
				if allows(r, w.target) {
					by = append(by, from(r))
				}
			}
			if len(by) > 0 && !slices.ContainsFunc(by, func(c string) bool { return !reported[c] }) {
				explained = append(explained, w)
			} else {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			continue
		}
		if len(explained) > 0 {
			extra = kept
			matched = slices.DeleteFunc(slices.Clone(matched), func(r *secureauditv1.PolicyRule) bool {
				return !slices.ContainsFunc(kept, func(w widened) bool { return allows(r, w.target) })
			})
		}
		var sources, contributors []string
		for _, r := range matched {
			c := source[r]
			if c == name {
				c = copiedFrom(r, aggregated, name)
			}
			if !slices.Contains(sources, c) {
				sources = append(sources, c)
				if c != name {
					contributors = append(contributors, c)
				}
			}
		}
		slices.Sort(sources)
		slices.Sort(contributors)
		detail := "Beyond upstream: " + widenedList(extra) + "."
		if len(contributors) > 0 {
			detail += " Contributed through aggregation by ClusterRole " + strings.Join(contributors, ", ") + "."
		}
		if len(explained) > 0 {
			detail += " Also beyond upstream, and reported by RBAC-036 on the ClusterRoles aggregated into it: " + widenedList(explained) + "."
		}
		var cmds []string
		for _, c := range sources {
			if _, builtin := upstream(c); !builtin {
				contributor, _ := s.ClusterRole(c)
				cmds = append(cmds, unlabelCommand(contributor))
				continue
			}
			// A bootstrap role keeps its upstream aggregation labels
			// (removing them would take upstream permissions away too):
			// its extra rules go.
			var granted []widened
			for _, w := range extra {
				if slices.ContainsFunc(matched, func(r *secureauditv1.PolicyRule) bool {
					from := source[r]
					if from == name {
						from = copiedFrom(r, aggregated, name)
					}
					return from == c && allows(r, w.target)
				}) {
					granted = append(granted, w)
				}
			}
			cmds = append(cmds, "kubectl edit clusterrole "+quote(c)+" and remove the rules granting "+widenedSummary(granted))
		}
		fix := strings.Join(cmds, "; ")
		d := &draft{rule: ruleByID(BuiltinWidened), role: clusterRef(name), matched: matched, detail: detail, fix: fix}
		d.ladder = newLadder(d.rule.Severity, "built-in "+name+" grants "+widenedSummary(extra))
		out = append(out, d)
	}
	out = append(out, agg...)

	// RBAC-037.
	bound := map[string]bool{} // "C/name" or "R/ns/name"
	for _, g := range a.grants {
		if g.Role.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
			bound["R/"+g.Role.GetNamespace()+"/"+g.Role.GetName()] = true
		} else {
			bound["C/"+g.Role.GetName()] = true
		}
	}
	// A role selected by an aggregating role is part of that role: judged
	// with it, not alone.
	selected := map[string]bool{}
	for _, agg := range clusterRoles {
		sel := agg.GetAggregationSelectors()
		if len(sel) == 0 {
			continue
		}
		for _, cr := range clusterRoles {
			if cr != agg && slices.ContainsFunc(sel, func(ls *secureauditv1.LabelSelector) bool {
				return snapshot.Matches(ls, cr.GetMeta().GetLabels())
			}) {
				selected[cr.GetMeta().GetName()] = true
			}
		}
	}
	for _, cr := range clusterRoles {
		name := cr.GetMeta().GetName()
		if _, builtin := upstream(name); bound["C/"+name] || selected[name] || builtin || aggregated(cr.GetMeta().GetLabels()) {
			continue
		}
		rules, _ := s.EffectiveClusterRoleRules(name)
		if what, why, matched := dangerous(newProfile(rules, false, a.streamGet)); what != "" {
			d := &draft{rule: ruleByID(UnboundDangerous), role: clusterRef(name), matched: matched,
				detail: "It grants " + what + ".", fix: "kubectl delete clusterrole " + quote(name)}
			d.ladder = newLadder(d.rule.Severity, "unbound role grants "+why)
			out = append(out, d)
		}
	}
	for _, r := range s.Roles() {
		ns, name := r.GetMeta().GetNamespace(), r.GetMeta().GetName()
		// The bootstrap policy's own Roles (kube-system, kube-public) are
		// recognised by their captured rules, not by their names.
		if bound["R/"+ns+"/"+name] || bootstrapRole(ns, name, r.GetRules()) {
			continue
		}
		if what, why, matched := dangerous(newProfile(r.GetRules(), true, a.streamGet)); what != "" {
			d := &draft{rule: ruleByID(UnboundDangerous), ns: ns, matched: matched,
				role:   &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: name, Namespace: ns},
				detail: "It grants " + what + ".", fix: "kubectl -n " + quote(ns) + " delete role " + quote(name)}
			d.ladder = newLadder(d.rule.Severity, "unbound role grants "+why)
			out = append(out, d)
		}
	}
	return out
}

// builtinName reports whether a ClusterRole name is, or could be, a
// bootstrap role's: where a powerful role must be assumed (bind restricted
// by name to it, a binding to a role the snapshot lacks).
func builtinName(name string) bool {
	switch name {
	case "cluster-admin", "admin", "edit", "view":
		return true
	}
	return strings.HasPrefix(name, "system:")
}

// aggregated reports whether labels aggregate a role into another.
func aggregated(labels map[string]string) bool {
	for k := range labels {
		if strings.HasPrefix(k, aggregateLabel) {
			return true
		}
	}
	return false
}

// dangerousCaps are the capabilities that make an unbound role worth
// reporting: each is one binding away from a HIGH finding or worse.
var dangerousCaps = []Capability{
	CapSecretsRead, CapPodCreate, CapExec, CapEscalation, CapPVCreate, CapNodesProxy,
	CapTokenCreate, CapWebhookWrite, CapCSRApproval, CapEphemeral, CapCRDWrite, CapNodeWrite,
}

// dangerous returns what makes p dangerous ("" when nothing), a summary of
// it, and the rules behind it.
func dangerous(p *profile) (string, string, []*secureauditv1.PolicyRule) {
	if len(p.full) > 0 && !p.fullNarrow {
		return "every verb on every resource", "every verb on every resource", p.full
	}
	var found []target
	var rules []*secureauditv1.PolicyRule
	for _, c := range dangerousCaps {
		m := p.caps[c]
		if !m.ok() || m.narrow {
			continue
		}
		found = append(found, m.found...)
		for _, r := range m.rules {
			if !slices.Contains(rules, r) {
				rules = append(rules, r)
			}
		}
	}
	if len(found) == 0 {
		return "", "", nil
	}
	return targetList(found), summary(found), rules
}

// unlabelCommand removes every aggregation label of a ClusterRole.
// aggregatedInto returns the ClusterRoles role's aggregation selectors
// reach, directly or through roles they select, by name.
func aggregatedInto(all []*secureauditv1.ClusterRole, role *secureauditv1.ClusterRole) []*secureauditv1.ClusterRole {
	seen := map[string]bool{role.GetMeta().GetName(): true}
	var out []*secureauditv1.ClusterRole
	for queue := []*secureauditv1.ClusterRole{role}; len(queue) > 0; queue = queue[1:] {
		for _, cr := range all {
			if seen[cr.GetMeta().GetName()] || !slices.ContainsFunc(queue[0].GetAggregationSelectors(), func(ls *secureauditv1.LabelSelector) bool {
				return snapshot.Matches(ls, cr.GetMeta().GetLabels())
			}) {
				continue
			}
			seen[cr.GetMeta().GetName()] = true
			out = append(out, cr)
			queue = append(queue, cr)
		}
	}
	slices.SortFunc(out, func(a, b *secureauditv1.ClusterRole) int {
		return strings.Compare(a.GetMeta().GetName(), b.GetMeta().GetName())
	})
	return out
}

// copiedFrom returns the ClusterRole among aggregated that holds a rule
// equal to r, preferring one that aggregates nothing itself (the origin of
// a copy), or owner when none does.
func copiedFrom(r *secureauditv1.PolicyRule, aggregated []*secureauditv1.ClusterRole, owner string) string {
	from := owner
	for _, cr := range aggregated {
		if !slices.ContainsFunc(cr.GetRules(), func(x *secureauditv1.PolicyRule) bool { return proto.Equal(x, r) }) {
			continue
		}
		if len(cr.GetAggregationSelectors()) == 0 {
			return cr.GetMeta().GetName()
		}
		if from == owner {
			from = cr.GetMeta().GetName()
		}
	}
	return from
}

func unlabelCommand(cr *secureauditv1.ClusterRole) string {
	name := cr.GetMeta().GetName()
	var labels []string
	for k := range cr.GetMeta().GetLabels() {
		if strings.HasPrefix(k, aggregateLabel) {
			labels = append(labels, quote(k+"-"))
		}
	}
	slices.Sort(labels)
	if len(labels) == 0 {
		return "kubectl edit clusterrole " + quote(name)
	}
	return "kubectl label clusterrole " + quote(name) + " " + strings.Join(labels, " ")
}

// writeVerbsAny are the verbs that change objects.
var writeVerbsAny = []string{"create", "update", "patch", "delete", "deletecollection"}

// extraWrites lists the writes ("create widgets.example.com") that rules
// grant and base does not, on any API group, with the rules granting them.
// A '*' verb, group or resource is one write of its own ("* * in
// example.com"), since base never grants a wildcard.
func extraWrites(rules, base []*secureauditv1.PolicyRule) (writes []string, matched []*secureauditv1.PolicyRule, allInert bool) {
	allInert = true
	var out []string
	for _, r := range rules {
		if len(r.GetResources()) == 0 {
			continue
		}
		hit := false
		for _, v := range r.GetVerbs() {
			if v != "*" && !slices.Contains(writeVerbsAny, v) {
				continue
			}
			for _, g := range r.GetApiGroups() {
				for _, res := range r.GetResources() {
					t := target{verb: v, group: g, resource: res}
					if v != "*" && g != "*" && res != "*" && !strings.HasPrefix(res, "*/") &&
						slices.ContainsFunc(base, func(b *secureauditv1.PolicyRule) bool {
							return len(b.GetResourceNames()) == 0 && allows(b, t)
						}) {
						continue
					}
					allInert = allInert && isInert(g, res)
					w := writeText(v, g, res)
					if !slices.Contains(out, w) {
						out = append(out, w)
					}
					hit = true
				}
			}
		}
		if hit {
			matched = append(matched, r)
		}
	}
	return out, matched, allInert && len(out) > 0
}

// writeText names a write for people: "patch configmaps", "create widgets
// in example.com", "every verb on every resource in example.com".
func writeText(verb, group, resource string) string {
	if verb == "*" {
		verb = "every verb on"
	}
	if resource == "*" {
		resource = "every resource"
	}
	switch group {
	case "":
		return verb + " " + resource
	case "*":
		return verb + " " + resource + " in every API group"
	}
	return verb + " " + resource + " in " + group
}

// summaryStrings names at most four items and counts the rest.
func summaryStrings(ss []string) string {
	const n = 4
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return strings.Join(ss[:n], ", ") + " and " + strconv.Itoa(len(ss)-n) + " more"
}
