package render

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Markdown renders the report for a GRC reviewer: an executive summary,
// counts by severity, a summary table of every finding with its action,
// changes since the previous audit, identity issues, permission issues
// (most severe and widest first), escalation paths, the access review with
// a sign-off line per item, what looks good, and an appendix of
// platform-managed bindings. Every string that came from the cluster or the
// directory is escaped, so a hostile object name cannot break a table or
// inject a link or HTML.
func Markdown(r *secureauditv1.Report) []byte {
	v := newView(r)
	var b strings.Builder
	fmt.Fprintf(&b, "# RBAC audit report: %s\n\n", md(v.Cluster))
	writeExecutive(&b, v)
	writeOverview(&b, v)
	writeCounts(&b, v)
	writeSummary(&b, v)
	writeHistory(&b, v)
	writeIdentity(&b, v)
	writePermission(&b, v)
	writePaths(&b, v)
	writeReview(&b, v)
	writeReasoning(&b, v)
	writeGood(&b, v)
	writeAppendix(&b, v)
	return []byte(b.String())
}

// actionMeaning says what each action asks of the owner.
var actionMeaning = map[Action]string{
	ActionRevoke:      "remove this access now, unless its owner justifies it in writing",
	ActionInvestigate: "find out who uses this access and for what, then narrow or remove it",
	ActionReview:      "confirm at the next access review that this access is still needed",
}

func writeExecutive(b *strings.Builder, v view) {
	b.WriteString("## Executive summary\n\n")
	fmt.Fprintf(b, "This report reviews who can do what in the Kubernetes cluster **%s**, as read from the %s on %s (%s). ",
		md(v.Cluster), v.Source, v.GeneratedAt, v.Objects)
	if v.Total == 0 {
		b.WriteString("No rule matched a subject outside the platform-managed bindings.\n\n")
	} else {
		parts := make([]string, 0, len(v.Counts))
		for _, c := range v.Counts {
			if c.Main > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c.Main, strings.ToLower(c.Severity)))
			}
		}
		fmt.Fprintf(b, "It found %d %s: %s.\n\n", v.Total, plural(v.Total, "issue", "issues"), strings.Join(parts, ", "))
		t := v.Top
		fmt.Fprintf(b, "**Most important issue ([#%d](#%s)).** %s: %s holds %s. ",
			t.Number, t.Anchor, md(t.Title), md(t.Subject), md(t.Access))
		if t.Description != "" {
			fmt.Fprintf(b, "%s ", md(t.Description))
		}
		fmt.Fprintf(b, "Rated %s (%s). Action: **%s**, %s.\n\n", strings.ToLower(t.Severity), md(t.SeverityReason), t.Action, actionMeaning[t.Action])
	}
	switch {
	case v.Directory && v.Partial():
		fmt.Fprintf(b, "- **Identity data:** INCOMPLETE; %d directory %s failed after retries, so identity findings about %s may be missing ([identity issues](#identity-issues)); the rest were resolved in Entra ID (%d not found).\n",
			v.FailedCount, plural(v.FailedCount, "lookup", "lookups"), plural(v.FailedCount, "that principal", "those principals"), v.Unresolved)
	case v.Directory:
		fmt.Fprintf(b, "- **Identity data:** available; users and groups were resolved in Entra ID (%d not found).\n", v.Unresolved)
	default:
		b.WriteString("- **Identity data:** not available; people behind groups are not listed and identity rules were not evaluated.\n")
	}
	if v.UnauditedCount > 0 {
		names := make([]string, len(v.Unaudited))
		for i, n := range v.Unaudited {
			names[i] = md(n)
		}
		list := strings.Join(names, ", ")
		if more := v.UnauditedMore(); more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		fmt.Fprintf(b, "- **RBAC data:** INCOMPLETE; %d %s the API server accepted %s too large to audit and left out (%s; RBAC-050), so what %s grant was not judged.\n",
			v.UnauditedCount, plural(v.UnauditedCount, "object", "objects"), plural(v.UnauditedCount, "was", "were"), list, plural(v.UnauditedCount, "it", "they"))
	}
	if v.Provider == providerNone {
		b.WriteString("- **Model reasoning:** not used; every sentence in this report is deterministic.\n")
	} else {
		fmt.Fprintf(b, "- **Model reasoning:** %s; model notes are labelled and never change a finding.\n", md(v.Provider))
	}
	fmt.Fprintf(b, "- **Access review:** %d %s to sign off.\n\n", len(v.Review), plural(len(v.Review), "item", "items"))
}

func writeOverview(b *strings.Builder, v view) {
	b.WriteString("## About this audit\n\n")
	fmt.Fprintf(b, "- **Audit ID:** %s\n", md(v.AuditID))
	fmt.Fprintf(b, "- **Generated at:** %s\n", v.GeneratedAt)
	if v.Origin != "" {
		fmt.Fprintf(b, "- **Source:** %s, read from %s\n", v.Source, md(v.Origin))
	} else {
		fmt.Fprintf(b, "- **Source:** %s\n", v.Source)
	}
	fmt.Fprintf(b, "- **Objects reviewed:** %s\n", v.Objects)
	if len(v.Skipped) == 0 {
		b.WriteString("- **Skipped kinds:** none\n")
	} else {
		parts := make([]string, len(v.Skipped))
		for i, s := range v.Skipped {
			parts[i] = fmt.Sprintf("%s (%d)", md(s.Kind), s.Count)
		}
		fmt.Fprintf(b, "- **Skipped kinds:** %s; objects of these kinds were counted and never read beyond their kind\n", strings.Join(parts, ", "))
	}
	if v.Directory {
		fmt.Fprintf(b, "- **Identity data:** available from Entra ID; %d %s not found in the directory", v.Unresolved, plural(int(v.Unresolved), "principal was", "principals were"))
		if v.Partial() {
			fmt.Fprintf(b, "; **incomplete**: %d %s failed after retries (listed under identity issues)", v.FailedCount, plural(v.FailedCount, "lookup", "lookups"))
		}
		b.WriteString("\n")
	} else {
		b.WriteString("- **Identity data:** not available; principals are shown by their Kubernetes names only, and findings that need the directory were not evaluated\n")
	}
	if v.Provider == providerNone {
		b.WriteString("- **Reasoning provider:** `none`; all text in this report is deterministic, no language model was used\n")
	} else {
		fmt.Fprintf(b, "- **Reasoning provider:** %s; model output annotates findings and never creates, removes or re-scores them\n", md(v.Provider))
	}
	if v.Catalogue != "" {
		fmt.Fprintf(b, "- **Rule catalogue:** %s\n", md(v.Catalogue))
	}
	if v.Semantics != "" {
		fmt.Fprintf(b, "- **Authorizer semantics:** %s\n", md(v.Semantics))
	}
	b.WriteString("\n")
}

func writeCounts(b *strings.Builder, v view) {
	b.WriteString("## Findings by severity\n\n")
	b.WriteString("| Severity | Findings | Platform-managed |\n")
	b.WriteString("|---|---:|---:|\n")
	for _, c := range v.Counts {
		fmt.Fprintf(b, "| %s | %d | %d |\n", c.Severity, c.Main, c.Infra)
	}
	fmt.Fprintf(b, "| **Total** | **%d** | **%d** |\n\n", v.Total, v.InfraTotal)
}

func writeSummary(b *strings.Builder, v view) {
	b.WriteString("## Summary of findings\n\n")
	if len(v.Findings) == 0 {
		b.WriteString("No findings: no rule matched a subject outside the platform-managed bindings.\n\n")
		return
	}
	b.WriteString("| # | Severity | Issue | Principal | Scope | Action |\n")
	b.WriteString("|---:|---|---|---|---|---|\n")
	for _, f := range v.Findings {
		fmt.Fprintf(b, "| [%d](#%s) | %s | %s | %s | %s | %s |\n",
			f.Number, f.Anchor, f.Severity, md(f.Title), md(f.Subject), md(f.Scope), f.Action)
	}
	b.WriteString("\nActions: **Revoke**: " + actionMeaning[ActionRevoke] + "; **Investigate**: " + actionMeaning[ActionInvestigate] +
		"; **Review**: " + actionMeaning[ActionReview] + ".\n\n")
}

func writeHistory(b *strings.Builder, v view) {
	h := v.History
	if h == nil {
		return
	}
	b.WriteString("## Changes since the previous audit\n\n")
	fmt.Fprintf(b, "Compared with audit %s of %s: %d new, %d changed, %d resolved.\n\n",
		md(h.PreviousID), h.PreviousAt, len(h.New), len(h.Changed), len(h.Resolved))
	if len(h.New)+len(h.Changed)+len(h.Resolved) == 0 {
		b.WriteString("Nothing changed.\n\n")
		return
	}
	b.WriteString("| Change | Severity | Issue | Principal | Scope |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, f := range h.New {
		fmt.Fprintf(b, "| New ([#%d](#%s)) | %s | %s | %s | %s |\n", f.Number, f.Anchor, f.Severity, md(f.Title), md(f.Subject), md(f.Scope))
	}
	for _, c := range h.Changed {
		f := c.Finding
		fmt.Fprintf(b, "| Changed ([#%d](#%s)): %s | %s (was %s) | %s | %s | %s |\n", f.Number, f.Anchor, md(c.Fields), f.Severity, c.Previous, md(f.Title), md(f.Subject), md(f.Scope))
	}
	for _, f := range h.Resolved {
		fmt.Fprintf(b, "| Resolved | %s | %s | %s | %s |\n", f.Severity, md(f.Title), md(f.Subject), md(f.Scope))
	}
	b.WriteString("\n")
}

func writeIdentity(b *strings.Builder, v view) {
	b.WriteString("## Identity issues\n\n")
	if !v.Directory {
		b.WriteString("Not evaluated: no identity data was available for this audit, so guests, disabled and orphaned accounts could not be checked.\n\n")
		return
	}
	if v.Partial() {
		fmt.Fprintf(b, "**Incomplete.** These %d directory %s failed after retries. The principals they concern were neither resolved nor reported missing, so findings about them (guests, disabled or deleted accounts, the people behind a group) may be absent; audit again when the directory answers.\n\n",
			v.FailedCount, plural(v.FailedCount, "lookup", "lookups"))
		for _, f := range v.Failed {
			fmt.Fprintf(b, "- `%s`: %s\n", strings.ReplaceAll(f.Lookup, "`", "'"), md(f.Message))
		}
		b.WriteString("\n")
	}
	if len(v.Identity) == 0 {
		b.WriteString("None: no identity rule matched a user or group bound in the cluster.\n\n")
		return
	}
	for _, f := range v.Identity {
		writeFinding(b, f, v)
	}
	b.WriteString("\n")
}

func writePermission(b *strings.Builder, v view) {
	b.WriteString("## Permission issues\n\n")
	if len(v.Permission) == 0 {
		b.WriteString("None.\n\n")
		return
	}
	b.WriteString("Most severe first; at equal severity, cluster-wide grants before namespaced ones.\n")
	for _, f := range v.Permission {
		writeFinding(b, f, v)
	}
	b.WriteString("\n")
}

// reviewFor returns the access review item about a finding's subject.
func reviewFor(v view, f findingView) *reviewItem {
	for i := range v.Review {
		for _, n := range v.Review[i].Findings {
			if n == f.Number {
				return &v.Review[i]
			}
		}
	}
	return nil
}

func writeFinding(b *strings.Builder, f findingView, v view) {
	fmt.Fprintf(b, "\n<a id=\"%s\"></a>\n\n### %d. %s: %s\n\n", f.Anchor, f.Number, f.Severity, md(f.Title))
	fmt.Fprintf(b, "- **Issue:** %s (rule %s, finding %s)\n", md(f.Title), md(f.RuleID), md(f.ID))
	fmt.Fprintf(b, "- **Severity:** %s; %s\n", f.Severity, md(f.SeverityReason))
	who := md(f.Subject)
	if item := reviewFor(v, f); item != nil && len(item.Members) > 0 {
		who += fmt.Sprintf("; %d %s through the group (access review [R%d](#%s))", len(item.Members), plural(len(item.Members), "person", "people"), item.Number, item.Anchor)
	}
	fmt.Fprintf(b, "- **Who is affected:** %s\n", who)
	if f.RoleMissing {
		fmt.Fprintf(b, "- **Current access:** %s; the role is missing: the binding references a role that does not exist\n", md(f.Access))
	} else {
		fmt.Fprintf(b, "- **Current access:** %s\n", md(f.Access))
	}
	fmt.Fprintf(b, "- **Action:** %s: %s\n", f.Action, actionMeaning[f.Action])
	b.WriteString("\n**Why it matters.** ")
	if f.Description != "" {
		fmt.Fprintf(b, "%s ", md(f.Description))
	}
	fmt.Fprintf(b, "Controls: %s.\n", mdList(f.ControlTexts, "none"))
	if len(f.Folded) > 0 {
		fmt.Fprintf(b, "This finding also stands for %s on the same grant (their controls are listed above).\n", strings.Join(f.Folded, ", "))
	}
	b.WriteString("\n**What it allows**\n\n")
	writeRules(b, f.Rules)
	b.WriteString("\n**How to fix it**\n\n")
	if isCommand(f.Remediation) {
		fence := codeFence(f.Remediation)
		fmt.Fprintf(b, "%ssh\n%s\n%s\n", fence, strings.TrimRight(f.Remediation, "\n"), fence)
	} else {
		fmt.Fprintf(b, "%s\n", md(f.Remediation))
	}
	writeNote(b, f)
}

func writePaths(b *strings.Builder, v view) {
	b.WriteString("## Escalation paths\n\n")
	if len(v.Paths) == 0 {
		b.WriteString("No finding carries a multi-step escalation path.\n\n")
		return
	}
	for _, f := range v.Paths {
		fmt.Fprintf(b, "**[#%d](#%s) %s** (%s)\n\n", f.Number, f.Anchor, md(f.Title), f.Severity)
		for i, step := range f.Path {
			fmt.Fprintf(b, "%d. %s\n", i+1, md(step))
		}
		b.WriteString("\n")
	}
}

func writeReview(b *strings.Builder, v view) {
	b.WriteString("## Access review\n\n")
	if len(v.Review) == 0 {
		b.WriteString("No user or group outside the platform holds access through a binding.\n\n")
		return
	}
	b.WriteString("One item per group and per directly bound user that holds access, cluster-wide access first. ")
	b.WriteString("For each, the reviewer ticks one decision and signs: **Confirmed** (the access is needed as it is), ")
	b.WriteString("**Requires justification** (the owner must explain it by the next review), or **Revoke** (remove it).\n")
	for _, item := range v.Review {
		fmt.Fprintf(b, "\n<a id=\"%s\"></a>\n\n### R%d. %s\n\n", item.Anchor, item.Number, md(item.Subject))
		b.WriteString("**Access held**\n\n")
		for _, g := range item.Grants {
			role := md(g.Role)
			if g.Missing {
				role += " (missing)"
			}
			fmt.Fprintf(b, "- %s through %s, %s\n", role, md(g.Binding), md(g.Scope))
		}
		b.WriteString("\n")
		writePeople(b, item)
		if len(item.Findings) > 0 {
			refs := make([]string, len(item.Findings))
			for i, n := range item.Findings {
				refs[i] = fmt.Sprintf("[#%d](#finding-%d)", n, n)
			}
			fmt.Fprintf(b, "- **Findings:** %s\n", strings.Join(refs, ", "))
		} else {
			b.WriteString("- **Findings:** none\n")
		}
		if item.Note != "" {
			fmt.Fprintf(b, "- **Model's plausibility note:** %s\n", md(item.Note))
		} else {
			b.WriteString("- **Model's plausibility note:** not available\n")
		}
		b.WriteString("\n**Decision:** [ ] Confirmed  [ ] Requires justification  [ ] Revoke\n\n")
		b.WriteString("Reviewer: ____________________  Date: ____________  Comment: ____________________\n")
	}
	b.WriteString("\n")
}

func writePeople(b *strings.Builder, item reviewItem) {
	switch {
	case item.Builtin:
		b.WriteString("- **People:** a Kubernetes built-in identity, not in any directory; " + builtinMeaning + "\n")
		return
	case !item.Directory:
		b.WriteString("- **People:** unknown; no identity data was available\n")
		return
	case !item.Resolved:
		b.WriteString("- **People:** not found in Entra ID; the binding may name a deleted or mistyped principal\n")
		return
	}
	if item.Description != "" {
		fmt.Fprintf(b, "- **Directory description:** %s\n", md(item.Description))
	}
	if item.Person != nil {
		p := *item.Person
		if fl := p.Flags(); fl != "" {
			fmt.Fprintf(b, "- **Person:** %s (%s)\n", md(p.Text()), fl)
		} else {
			fmt.Fprintf(b, "- **Person:** %s\n", md(p.Text()))
		}
		return
	}
	fmt.Fprintf(b, "- **Members:** %d (%d %s, %d disabled)\n", len(item.Members), item.Guests, plural(item.Guests, "guest", "guests"), item.Disabled)
	for _, m := range item.Members {
		if fl := m.Flags(); fl != "" {
			fmt.Fprintf(b, "  - %s (%s)\n", md(m.Text()), fl)
		} else {
			fmt.Fprintf(b, "  - %s\n", md(m.Text()))
		}
	}
	owners := make([]string, len(item.Owners))
	for i, o := range item.Owners {
		owners[i] = o.Text()
	}
	fmt.Fprintf(b, "- **Owners:** %s\n", mdList(owners, "none recorded"))
}

// builtinMeaning explains Kubernetes' built-in groups to a reviewer.
const builtinMeaning = "system:authenticated is every identity that can sign in to the cluster, system:masters bypasses all authorization"

func writeGood(b *strings.Builder, v view) {
	b.WriteString("## What looks good\n\n")
	if len(v.Good) == 0 {
		b.WriteString("Nothing to single out.\n\n")
		return
	}
	for _, g := range v.Good {
		fmt.Fprintf(b, "- %s\n", md(string(g)))
	}
	b.WriteString("\n")
}

func writeRules(b *strings.Builder, rules []*secureauditv1.PolicyRule) {
	if len(rules) == 0 {
		b.WriteString("No policy rules are recorded for this finding.\n")
		return
	}
	nonResource := false
	for _, r := range rules {
		if len(r.GetNonResourceUrls()) > 0 {
			nonResource = true
		}
	}
	if nonResource {
		b.WriteString("| Verbs | API groups | Resources | Resource names | Non-resource URLs |\n")
		b.WriteString("|---|---|---|---|---|\n")
	} else {
		b.WriteString("| Verbs | API groups | Resources | Resource names |\n")
		b.WriteString("|---|---|---|---|\n")
	}
	for _, r := range rules {
		fmt.Fprintf(b, "| %s | %s | %s | %s |", mdList(r.GetVerbs(), "none"), apiGroups(r.GetApiGroups()),
			mdList(r.GetResources(), "none"), mdList(r.GetResourceNames(), "any"))
		if nonResource {
			fmt.Fprintf(b, " %s |", mdList(r.GetNonResourceUrls(), "none"))
		}
		b.WriteString("\n")
	}
}

func writeAppendix(b *strings.Builder, v view) {
	b.WriteString("## Appendix: platform-managed bindings\n\n")
	if len(v.Infra) == 0 {
		b.WriteString("No findings concern platform-managed subjects.\n")
		return
	}
	b.WriteString("These findings concern grants the risk-agent recognised as created by the platform: the Kubernetes bootstrap policy and the catalogued AKS add-ons, each with its exact role, rules and subjects. ")
	b.WriteString("They are expected on a managed cluster and listed for completeness; review them when the platform's defaults were changed.\n\n")
	b.WriteString("| # | Severity | Rule | Title | Subject | Binding | Role | Scope |\n")
	b.WriteString("|---:|---|---|---|---|---|---|---|\n")
	for _, f := range v.Infra {
		role := md(f.Role)
		if f.RoleMissing {
			role += " (missing)"
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n",
			f.Number, f.Severity, md(f.RuleID), md(f.Title), md(f.Subject), md(f.Binding), role, md(f.Scope))
	}
}

// mdEscaper escapes every character that Markdown (CommonMark and GitHub
// tables) gives a meaning inline, and folds line breaks into spaces so that
// a value always stays on its line, inside its table cell.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`,
	"|", `\|`,
	"*", `\*`,
	"_", `\_`,
	"`", "\\`",
	"<", `\<`,
	">", `\>`,
	"[", `\[`,
	"]", `\]`,
	"&", `\&`,
	"~", `\~`,
	"\r\n", " ",
	"\n", " ",
	"\r", " ",
)

// md escapes untrusted text for inline Markdown.
func md(s string) string {
	return mdEscaper.Replace(s)
}

// mdList escapes and joins values, or returns empty when there are none.
func mdList(values []string, empty string) string {
	if len(values) == 0 {
		return empty
	}
	out := make([]string, len(values))
	for i, s := range values {
		out[i] = md(s)
	}
	return strings.Join(out, ", ")
}

// apiGroups lists API groups, showing the core group "" as `""`.
func apiGroups(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	out := make([]string, len(groups))
	for i, g := range groups {
		if g == "" {
			out[i] = "`\"\"`"
		} else {
			out[i] = md(g)
		}
	}
	return strings.Join(out, ", ")
}

// commandPrefixes start the lines of remediation that are shell commands.
var commandPrefixes = []string{"kubectl ", "az ", "helm ", "$ "}

// isCommand reports whether a remediation holds a command: a line that
// starts with one, or a kubectl invocation within prose.
func isCommand(remediation string) bool {
	for line := range strings.SplitSeq(remediation, "\n") {
		line = strings.TrimSpace(line)
		for _, p := range commandPrefixes {
			if strings.HasPrefix(line, p) {
				return true
			}
		}
	}
	return strings.Contains(remediation, " kubectl ")
}

// codeFence returns a backtick fence longer than any run of backticks in
// content, so content cannot close the block early.
func codeFence(content string) string {
	longest, run := 0, 0
	for _, c := range content {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

func plural(n int, one, multiple string) string {
	if n == 1 {
		return one
	}
	return multiple
}
