package rules

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// maxListed bounds the workloads a finding names; the rest are counted.
const maxListed = 10

// saUse is the workloads of one ServiceAccount.
type saUse struct {
	ns, name  string
	all       []*secureauditv1.Workload // every workload running as it
	mounting  []*secureauditv1.Workload // those that mount its token
	podsMount []*secureauditv1.Workload // running pods that mount its token
}

// workloads runs the rules about workloads: the default ServiceAccount in
// use (RBAC-011), tokens automounted for ServiceAccounts whose grants have
// a finding above INFO (RBAC-012: the token amplifies a risky grant; a
// workload whose grants raise nothing, or only informational hits, needs
// its token to call the API), workloads using missing ServiceAccounts (RBAC-038), and
// running pods holding a risky ServiceAccount's token (RBAC-039). drafts are
// the grant findings, whose severities decide which ServiceAccounts are
// risky.
func workloads(a *Analysis, drafts []*draft) []*draft {
	s := a.snap
	ws := s.Workloads()
	if len(ws) == 0 {
		return nil
	}
	hasSAs := map[string]bool{} // namespaces whose ServiceAccounts were collected
	for _, sa := range s.ServiceAccounts() {
		hasSAs[sa.GetMeta().GetNamespace()] = true
	}
	uses := map[string]*saUse{}
	var order []string
	for _, w := range ws {
		ns, name := w.GetMeta().GetNamespace(), w.GetServiceAccount()
		k := snapshot.Key(ns, name)
		u, ok := uses[k]
		if !ok {
			u = &saUse{ns: ns, name: name}
			uses[k] = u
			order = append(order, k)
		}
		u.all = append(u.all, w)
		if s.HoldsOwnToken(w) {
			u.mounting = append(u.mounting, w)
			if w.GetKind() == "Pod" {
				u.podsMount = append(u.podsMount, w)
			}
		}
	}
	// The most severe grant finding of each ServiceAccount, first in draft
	// order on ties; and whether it holds any grant at all.
	worst := map[string]*draft{}
	granted := map[string]*Grant{}
	for _, d := range drafts {
		g := d.g
		if g == nil || g.Subject.GetKind() != secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT || g.Role.GetMissing() {
			continue
		}
		k := snapshot.Key(g.Subject.GetNamespace(), g.Subject.GetName())
		if _, ok := granted[k]; !ok {
			granted[k] = g
		}
		// An informational hit (INFO) is no risky grant: its token
		// amplifies nothing worth an entry.
		if w, ok := worst[k]; d.ladder.sev < info && (!ok || d.ladder.sev < w.ladder.sev) {
			worst[k] = d
		}
	}
	for _, g := range a.grants {
		if g.Subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT && !g.Role.GetMissing() {
			k := snapshot.Key(g.Subject.GetNamespace(), g.Subject.GetName())
			if _, ok := granted[k]; !ok {
				granted[k] = g
			}
		}
	}

	var out []*draft
	for _, k := range order {
		u := uses[k]
		sa := &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: u.name, Namespace: u.ns}
		newDraft := func(id, why, detail, fix string) *draft {
			d := &draft{rule: ruleByID(id), subject: sa, ns: u.ns, detail: detail, fix: fix}
			d.ladder = newLadder(d.rule.Severity, why)
			out = append(out, d)
			return d
		}
		patch := "kubectl -n " + quote(u.ns) + " patch serviceaccount " + quote(u.name) + ` -p '{"automountServiceAccountToken":false}'`
		if _, ok := s.ServiceAccount(u.ns, u.name); !ok && u.name != "default" && hasSAs[u.ns] {
			newDraft(MissingServiceAccount, fmt.Sprintf("%d workloads use the missing ServiceAccount %s/%s", len(u.all), u.ns, u.name),
				"Workloads: "+listWorkloads(s, u.all)+".",
				"kubectl -n "+quote(u.ns)+" create serviceaccount "+quote(u.name)+" (deliberately), or change the workloads' serviceAccountName")
		}
		if u.name == "default" {
			newDraft(DefaultSAInUse, fmt.Sprintf("%d workloads run as %s/default", len(u.all), u.ns),
				"Workloads: "+listWorkloads(s, u.all)+".",
				"kubectl -n "+quote(u.ns)+" create serviceaccount NAME, set serviceAccountName: NAME in each workload (kubectl -n "+quote(u.ns)+" set serviceaccount KIND/NAME NAME), then "+patch)
		}
		g, hasGrant := granted[k]
		if _, risky := worst[k]; risky && hasGrant && len(u.mounting) > 0 {
			d := newDraft(TokenAutomount, fmt.Sprintf("%d workloads mount the token of %s/%s, whose grants have findings", len(u.mounting), u.ns, u.name),
				"Workloads: "+listWorkloads(s, u.mounting)+".", patch)
			d.binding = g.Binding
		}
		if w, ok := worst[k]; ok && w.ladder.sev <= secureauditv1.Severity_SEVERITY_HIGH && len(u.podsMount) > 0 {
			d := newDraft(BlastRadius, fmt.Sprintf("%d running pods mount the token of %s/%s (worst finding %s %s via %s)",
				len(u.podsMount), u.ns, u.name, w.rule.ID, sevName(w.ladder.sev), bindingText(w.g.Binding)),
				"Pods: "+listWorkloads(s, u.podsMount)+".",
				editBinding(w.g)+" and remove ServiceAccount "+u.ns+"/"+u.name+", or "+patch)
			d.binding = w.g.Binding
			d.role = w.g.Role
			if w.ladder.sev == secureauditv1.Severity_SEVERITY_CRITICAL {
				d.ladder.atLeast(secureauditv1.Severity_SEVERITY_CRITICAL, "the ServiceAccount has a CRITICAL finding")
			}
		}
	}
	return out
}

func listWorkloads(s *snapshot.Snapshot, ws []*secureauditv1.Workload) string {
	var parts []string
	for i, w := range ws {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(ws)-maxListed))
			break
		}
		parts = append(parts, w.GetKind()+" "+w.GetMeta().GetName()+tokenWays(s, w))
	}
	return strings.Join(parts, ", ")
}

// tokenWays says how a workload holds its own ServiceAccount's token when
// it is not (only) automounted: " (token through a projected
// serviceAccountToken in volume V (...))", or "" for the automounted token
// alone or none.
func tokenWays(s *snapshot.Snapshot, w *secureauditv1.Workload) string {
	if len(w.GetProjectedTokens()) == 0 {
		return "" // only projected tokens are named
	}
	var ways []string
	for _, t := range s.Tokens(w) {
		if t.Kind == snapshot.TokenProjected {
			ways = append(ways, t.Text())
		}
	}
	if len(ways) == 0 {
		return ""
	}
	if s.Automounts(w) {
		return " (token automounted and through " + strings.Join(ways, " and ") + ")"
	}
	return " (automount off; token through " + strings.Join(ways, " and ") + ")"
}
