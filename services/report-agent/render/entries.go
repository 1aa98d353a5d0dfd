package render

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/report-agent/entry"
)

// hitView is one rule hit an entry holds, as report.json and SARIF keep it.
type hitView struct {
	RuleID   string
	Title    string
	Severity string
	ID       string
	// How says why the hit belongs to the entry: "" for a hit of the
	// entry's own grant, "amplifies" for a token automount or pods holding
	// the token, "held more broadly" for a narrower grant of the subject.
	How string
}

// Text is the hit in a few words: rule, severity and finding ID.
func (h hitView) Text() string {
	return fmt.Sprintf("%s %s %s", h.RuleID, h.Severity, h.ID)
}

// HitsText lists the entry's hits on one line: the grant's own, then
// those that amplify it, then those of narrower grants it folds.
func (e *entryView) HitsText() string {
	var parts []string
	for _, how := range []string{"", howAmplifies, howNarrower, howSameFact, howAdds} {
		var hs []string
		for _, h := range e.Hits {
			if h.How == how {
				hs = append(hs, h.Text())
			}
		}
		if len(hs) == 0 {
			continue
		}
		text := strings.Join(hs, ", ")
		if how != "" {
			text = how + ": " + text
		}
		parts = append(parts, text)
	}
	return strings.Join(parts, "; ")
}

// How a hit belongs to an entry other than by its own grant.
const (
	howAmplifies = "amplifying the grant"
	howNarrower  = "held more broadly by this grant"
	howAdds      = "added at low severity by a narrower grant of the same subject"
	howSameFact  = "the same finding through another binding"
)

// entryView is what an entry adds to its lead finding's view.
type entryView struct {
	// Capabilities are what the grant gives: "cluster-admin equivalent"
	// when it is (RBAC-001, or a proven path), then the titles of its
	// rules, most severe first, then the amplifiers'.
	Capabilities []string
	// Workloads are the workloads that run as the subject.
	Workloads []string
	// Narrower are the subject's grants that this one gives more broadly,
	// or, when SameFact, the other bindings an identity finding is found
	// through.
	Narrower []string
	SameFact bool
	// Hits are every rule hit the entry holds.
	Hits []hitView
	// Suggestion spells out the action: the narrower grant, or what the
	// justification must say.
	Suggestion string
	// Component marks the workload identity of an installed component.
	Component bool
}

// IsServiceAccount reports whether the finding's subject is a
// ServiceAccount, whose workloads the report lists.
func (f findingView) IsServiceAccount() bool {
	return f.kind == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT
}

// NarrowerLabel names the list of Narrower.
func (e *entryView) NarrowerLabel() string {
	if e.SameFact {
		return "Also through (the same finding, folded here)"
	}
	return "Also held more narrowly (folded here)"
}

// HitCount is how many rule hits the entry holds.
func (e *entryView) HitCount() int { return len(e.Hits) }

// newEntryView describes entry e for the report; lead is its lead
// finding's view, whose severity and action become the entry's.
func newEntryView(e entry.Entry, fv *findingView) {
	lead := e.Lead()
	ev := &entryView{}
	seen := map[string]bool{}
	addCap := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			ev.Capabilities = append(ev.Capabilities, s)
		}
	}
	own := append(append([]*secureauditv1.Finding(nil), e.Grant.Hits...), e.Amplified...)
	ordered := ordered(own)
	for _, f := range e.Grant.Hits {
		if f.GetRuleId() == "RBAC-001" || (f.GetRuleId() == "PATH-001" && !f.GetConditional()) {
			addCap("cluster-admin equivalent")
		}
	}
	for _, f := range ordered {
		if !entry.Amplifier(f.GetRuleId()) {
			addCap(f.GetTitle())
		}
	}
	for _, f := range ordered {
		if entry.Amplifier(f.GetRuleId()) {
			addCap(f.GetTitle())
		}
	}
	for _, w := range lead.GetWorkloads() {
		text := w.GetKind() + " " + w.GetNamespace() + "/" + w.GetName()
		if len(w.GetImages()) > 0 {
			text += " (" + strings.Join(w.GetImages(), ", ") + ")"
		}
		ev.Workloads = append(ev.Workloads, text)
	}
	for _, f := range e.Grant.Hits {
		ev.Hits = append(ev.Hits, newHit(f, ""))
	}
	for _, f := range e.Amplified {
		ev.Hits = append(ev.Hits, newHit(f, howAmplifies))
	}
	// An identity finding (a stale, disabled or guest account, a second
	// path through Azure...) is one fact about the subject, found once per
	// binding that gives it access: the other bindings are the same fact
	// through another binding, not narrower grants, and carry no role.
	ev.SameFact = identityFinding(lead)
	for _, g := range e.Narrower {
		l := g.Lead()
		grant := bindingText(l.GetBinding())
		if l.GetRole() != nil {
			grant = roleText(l.GetRole()) + " through " + grant
		}
		ev.Narrower = append(ev.Narrower, fmt.Sprintf("%s, %s (%s)", grant, scopeText(l.GetScope()), strings.Join(ruleIDs(g.Hits), ", ")))
		for _, f := range g.Hits {
			how := howNarrower
			if ev.SameFact {
				how = howSameFact
			} else if e.Adds(f) {
				how = howAdds
			}
			ev.Hits = append(ev.Hits, newHit(f, how))
		}
	}
	for _, f := range e.Hits() {
		ev.Component = ev.Component || f.GetComponent()
	}
	fv.Entry = ev
	sev := e.Severity()
	fv.severity = sev
	fv.Severity = severityText(sev)
	fv.SeverityClass = strings.ToLower(fv.Severity)
	fv.Rules = grantRules(e.Grant.Hits)
	var controls []string
	for _, f := range e.Hits() {
		for _, c := range controlsOf(f) {
			if !slices.Contains(controls, c) {
				controls = append(controls, c)
			}
		}
	}
	fv.Controls = controls
	fv.ControlTexts = titlesOf(e.Hits()...).texts(controls)
	fv.Action, ev.Suggestion = entryAction(e, ev.Component)
}

func newHit(f *secureauditv1.Finding, how string) hitView {
	return hitView{RuleID: f.GetRuleId(), Title: f.GetTitle(), Severity: severityText(f.GetSeverity()), ID: f.GetId(), How: how}
}

func ruleIDs(hits []*secureauditv1.Finding) []string {
	var out []string
	for _, f := range hits {
		if !slices.Contains(out, f.GetRuleId()) {
			out = append(out, f.GetRuleId())
		}
	}
	return out
}

// grantRules are the policy rules behind a grant's hits, each once.
func grantRules(hits []*secureauditv1.Finding) []*secureauditv1.PolicyRule {
	var out []*secureauditv1.PolicyRule
	for _, f := range ordered(hits) {
		for _, r := range f.GetMatchedRules() {
			if !slices.ContainsFunc(out, func(o *secureauditv1.PolicyRule) bool { return proto.Equal(o, r) }) {
				out = append(out, r)
			}
		}
	}
	return out
}

// entryAction decides an entry's action and spells it out. People and
// groups keep the severity's action (Revoke for what they should not
// hold). The workload identity of an installed component is never told to
// revoke: a critical or high grant gets "Reduce scope" with the narrower
// grant where its rules allow one, or "Accept with justification" (a
// cluster-admin grant its component is built around). A role the API
// server rewrites is never the thing to edit, and a binding the add-on
// manager reconciles is never simply deleted: whether the platform ships it
// is investigated first.
func entryAction(e entry.Entry, component bool) (Action, string) {
	lead := e.Lead()
	sev := e.Severity()
	base := actionFor(lead)
	if sev != lead.GetSeverity() {
		base = actionFor(&secureauditv1.Finding{RuleId: lead.GetRuleId(), Family: lead.GetFamily(), Severity: sev})
	}
	// An application credential's hygiene (ENTRA-013) is fixed on the
	// credential, never by revoking the identity's access.
	switch lead.GetCredentialFix() {
	case secureauditv1.CredentialFix_CREDENTIAL_FIX_REMOVE:
		s := "delete it: " + lead.GetCredentialCommand()
		if sev <= secureauditv1.Severity_SEVERITY_HIGH {
			s = "delete the secret or certificate held beside the federated credential (the application keeps signing in through the federation): " + lead.GetCredentialCommand()
		}
		return ActionRemoveCredential, s
	case secureauditv1.CredentialFix_CREDENTIAL_FIX_ROTATE:
		return ActionRotateCredential, "add a federated credential (or a new secret with az ad app credential reset --append), move the application's users to it, then delete the old one: " + lead.GetCredentialCommand()
	}
	if base == ActionRevoke && lead.GetBindingReconciled() && !identityFinding(lead) {
		return ActionInvestigate, "the binding carries the add-on manager's Reconcile label, so if the platform ships it (as AKS ships its own), " +
			"deleting it is undone at the next reconcile: confirm with the platform's documentation or support that it ships this binding and this role; " +
			"if it does, record the provider's justification and narrow access through the platform (for AKS support access, the cluster's support settings); " +
			"if nothing ships it, the label is a disguise: delete the binding"
	}
	if !component || identityFinding(lead) || sev > secureauditv1.Severity_SEVERITY_HIGH {
		return base, ""
	}
	steps := narrowing(e)
	for _, f := range e.Grant.Hits {
		if f.GetRuleId() == "RBAC-001" {
			return ActionAccept, "record why the component needs cluster-admin rights (its documentation's reason) and who owns it; " +
				"if it manages only some API groups, replace its role with one listing them"
		}
	}
	if len(steps) == 0 {
		return ActionAccept, "record why the component needs this access and who owns it"
	}
	return ActionReduce, strings.Join(steps, "; ")
}

// aggregatesOnly is what the risk-agent's remediation says of an aggregated
// ClusterRole whose rules it traced to the ClusterRoles contributing them
// (the fix edits those).
const aggregatesOnly = "only aggregates the rules"

// narrowing spells out the narrower grants an entry's rules allow.
func narrowing(e entry.Entry) []string {
	lead := e.Lead()
	role := roleText(lead.GetRole())
	var out []string
	switch {
	case lead.GetRoleReconciled() && strings.Contains(lead.GetRemediation(), aggregatesOnly):
		// The risk-agent's fix names the ClusterRoles the rules come from.
		out = append(out, "leave "+role+" as it is (it only aggregates the rules of other ClusterRoles, and the API server rewrites it); narrow the ClusterRoles that contribute the rules, as the fix names")
	case lead.GetRoleReconciled():
		out = append(out, "leave "+role+" as it is (the API server rewrites it: aggregated or bootstrap role); narrow the binding instead")
	default:
		secrets, tokens, wildcard := false, false, false
		for _, r := range grantRules(e.Grant.Hits) {
			if len(r.GetResourceNames()) > 0 {
				continue
			}
			for _, res := range r.GetResources() {
				switch res {
				case "secrets":
					secrets = true
				case "serviceaccounts/token":
					tokens = tokens || slices.Contains(r.GetVerbs(), "create") || slices.Contains(r.GetVerbs(), "*")
				case "*":
					wildcard = true
				}
			}
			if slices.Contains(r.GetVerbs(), "*") {
				wildcard = true
			}
		}
		if wildcard {
			out = append(out, "replace the wildcards of "+role+" with the verbs and resources the component uses")
		}
		if secrets {
			out = append(out, "limit secrets in "+role+" to resourceNames of the Secrets the component manages")
		}
		if tokens {
			out = append(out, "limit serviceaccounts/token in "+role+" to resourceNames of the ServiceAccounts the component acts for")
		}
	}
	if lead.GetScope().GetLevel() == secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER &&
		lead.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING {
		out = append(out, "bind per namespace instead of cluster-wide: replace "+bindingText(lead.GetBinding())+
			" with RoleBindings to "+role+" in the namespaces the component serves")
	}
	return out
}

// RevokeFindings are the IDs of a report's main findings whose action is
// Revoke (every hit of an entry whose action is Revoke, as SARIF marks
// them), in the report's order. The orchestrator tracks a revocation for
// each of their grants and checks it at the cluster's next audit: this is
// the one rule deciding what the report asks to revoke, so what the report
// says and what is verified cannot drift apart.
func RevokeFindings(r *secureauditv1.Report) []string {
	findings := ordered(r.GetFindings())
	actions := entryActions(findings)
	var out []string
	for _, f := range findings {
		if actions[f.GetId()] == ActionRevoke {
			out = append(out, f.GetId())
		}
	}
	return out
}

// entryActions maps each finding ID to the action of the entry that holds
// it, so that SARIF results say what the reviewer's list says.
func entryActions(findings []*secureauditv1.Finding) map[string]Action {
	out := map[string]Action{}
	for _, e := range entry.Group(findings) {
		component := false
		for _, f := range e.Hits() {
			component = component || f.GetComponent()
		}
		a, _ := entryAction(e, component)
		for _, f := range e.Hits() {
			out[f.GetId()] = a
		}
	}
	return out
}
