package render

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Markdown renders the report for a GRC reviewer: an overview, counts by
// severity, a summary table, one section per main finding in the order
// given (most severe first) and an appendix of platform-managed bindings.
// Every string that came from the cluster or the directory is escaped, so a
// hostile object name cannot break a table or inject a link or HTML.
func Markdown(r *secureauditv1.Report) []byte {
	v := newView(r)
	var b strings.Builder
	fmt.Fprintf(&b, "# RBAC audit report: %s\n\n", md(v.Cluster))
	writeOverview(&b, v)
	writeCounts(&b, v)
	writeSummary(&b, v)
	if len(v.Findings) > 0 {
		b.WriteString("## Findings\n")
		for _, f := range v.Findings {
			writeFinding(&b, f)
		}
		b.WriteString("\n")
	}
	writeAppendix(&b, v)
	return []byte(b.String())
}

func writeOverview(b *strings.Builder, v view) {
	b.WriteString("## Overview\n\n")
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
		fmt.Fprintf(b, "- **Identity data:** available from Entra ID; %d %s not found in the directory\n", v.Unresolved, plural(int(v.Unresolved), "principal was", "principals were"))
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
	b.WriteString("| # | Severity | Rule | Title | Subject | Scope | Binding |\n")
	b.WriteString("|---:|---|---|---|---|---|---|\n")
	for _, f := range v.Findings {
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s |\n",
			f.Number, f.Severity, md(f.RuleID), md(f.Title), md(f.Subject), md(f.Scope), md(f.Binding))
	}
	b.WriteString("\n")
}

func writeFinding(b *strings.Builder, f findingView) {
	fmt.Fprintf(b, "\n### %d. %s: %s\n\n", f.Number, f.Severity, md(f.Title))
	fmt.Fprintf(b, "- **Rule:** %s\n", md(f.RuleID))
	fmt.Fprintf(b, "- **Finding ID:** %s\n", md(f.ID))
	fmt.Fprintf(b, "- **Severity:** %s; %s\n", f.Severity, md(f.SeverityReason))
	fmt.Fprintf(b, "- **Subject:** %s\n", md(f.Subject))
	fmt.Fprintf(b, "- **Binding:** %s\n", md(f.Binding))
	if f.RoleMissing {
		fmt.Fprintf(b, "- **Role:** %s, missing: the binding references a role that does not exist\n", md(f.Role))
	} else {
		fmt.Fprintf(b, "- **Role:** %s\n", md(f.Role))
	}
	fmt.Fprintf(b, "- **Scope:** %s\n", md(f.Scope))
	fmt.Fprintf(b, "- **Controls:** %s\n", mdList(f.Controls, "none"))
	if f.Description != "" {
		fmt.Fprintf(b, "\n**Why it matters.** %s\n", md(f.Description))
	}
	b.WriteString("\n**Matched rules**\n\n")
	writeRules(b, f.Rules)
	b.WriteString("\n**Remediation**\n\n")
	if isCommand(f.Remediation) {
		fence := codeFence(f.Remediation)
		fmt.Fprintf(b, "%ssh\n%s\n%s\n", fence, strings.TrimRight(f.Remediation, "\n"), fence)
	} else {
		fmt.Fprintf(b, "%s\n", md(f.Remediation))
	}
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
	b.WriteString("These findings concern platform-managed subjects (`system:*`, `aks:*`, controller accounts). ")
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
