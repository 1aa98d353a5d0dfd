package render

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Markdown renders the report for a GRC reviewer: an executive summary,
// counts by severity, a summary table of every finding with its action,
// changes since the previous audit, identity issues, the AKS cluster's
// configuration, permission issues
// (most severe and widest first), escalation paths, the access review with
// a sign-off line per item, what looks good, and an appendix of
// platform-managed bindings. Every string that came from the cluster or the
// directory is escaped, so a hostile object name cannot break a table or
// inject a link or HTML.
func Markdown(r *secureauditv1.Report) []byte {
	var out bytes.Buffer
	_ = WriteMarkdown(&out, r) // a bytes.Buffer does not fail
	return out.Bytes()
}

// textWriter is what the Markdown sections write to: a bufio.Writer over
// the document's destination, or a strings.Builder for a nested block.
type textWriter interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
}

// WriteMarkdown writes the Markdown report to w as it is produced, so that
// only the view of the report is held, not the document; it returns the
// first error writing to w.
func WriteMarkdown(w io.Writer, r *secureauditv1.Report) error {
	v := newView(r)
	b := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(b, "# RBAC audit report: %s\n\n", md(v.Cluster))
	writeExecutive(b, v)
	writeChoke(b, v)
	writeOverview(b, v)
	writeCounts(b, v)
	writeSummary(b, v)
	writeHistory(b, v)
	writeIdentity(b, v)
	writeAKS(b, v)
	writePermission(b, v)
	writePaths(b, v)
	writeAccepted(b, v)
	writeCampaigns(b, v)
	writeReview(b, v)
	writeReasoning(b, v)
	writeGood(b, v)
	writeInformational(b, v)
	writeAppendix(b, v)
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write Markdown: %w", err)
	}
	return nil
}

// actionMeaning says what each action asks of the owner.
var actionMeaning = map[Action]string{
	ActionRevoke:      "remove this access now, unless its owner justifies it in writing",
	ActionInvestigate: "find out who uses this access and for what, then narrow or remove it",
	ActionReview:      "confirm at the next access review that this access is still needed",
	ActionReduce:      "narrow the installed component's grant as spelled out, keeping what it needs",
	ActionAccept:      "keep the installed component's grant with a written justification and a named owner",
	ActionReconfigure: "change the cluster's setting as shown under \"How to fix it\"; it is no one's access to remove",
	ActionRemoveCredential: "delete the application's client secret or certificate with the command given; the identity keeps its access " +
		"(through its federated credential, or the credential no longer worked)",
	ActionRotateCredential: "give the application a new credential (better, a federated one), move its users to it, then delete the old one with the command given",
}

func writeExecutive(b textWriter, v view) {
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
		fmt.Fprintf(b, "It found %d %s: %s. The list has one entry per risky grant (subject, binding, role, scope), holding the %d rule %s behind %s (each kept in report.json and SARIF).\n\n",
			v.Total, plural(v.Total, "issue", "issues"), strings.Join(parts, ", "), v.TotalHits, plural(v.TotalHits, "hit", "hits"), plural(v.Total, "it", "them"))
		if c := v.TopChoke; c != nil {
			fmt.Fprintf(b, "**Most important issue ([choke point %d](#%s)).** %s. Removing it costs: %s. ",
				c.Number, c.Anchor, md(c.Text()), md(c.CostText()))
			if c.Components {
				b.WriteString("Action: **Reduce scope**, narrow the binding's role to what each installed component needs, starting with the capabilities listed as the cost ([Choke points](#choke-points)).\n\n")
			} else {
				b.WriteString("Action: **Revoke**, remove the binding after its owners confirm the cost (command under [Choke points](#choke-points)).\n\n")
			}
		} else if t := v.Top; t != nil {
			fmt.Fprintf(b, "**Most important issue ([#%d](#%s)).** %s: %s holds %s. ",
				t.Number, t.Anchor, md(t.Title), md(t.Subject), md(t.Access))
			if t.Description != "" {
				fmt.Fprintf(b, "%s ", md(t.Description))
			}
			fmt.Fprintf(b, "Rated %s (%s). Action: **%s**, %s", strings.ToLower(t.Severity), md(t.SeverityReason), t.Action, actionMeaning[t.Action])
			if t.Entry != nil && t.Entry.Suggestion != "" {
				fmt.Fprintf(b, ": %s", md(t.Entry.Suggestion))
			}
			b.WriteString(".\n\n")
		} else {
			b.WriteString("**Most important issue.** None is proven: every finding that could lead here rests on an assumption the snapshot cannot show (see [Escalation paths](#escalation-paths)).\n\n")
		}
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
	fmt.Fprintf(b, "- **Access review:** %d %s to sign off%s.\n\n", len(v.Review), plural(len(v.Review), "item", "items"), md(v.reviewAlerts()))
}

func writeOverview(b textWriter, v view) {
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

func writeCounts(b textWriter, v view) {
	b.WriteString("## Findings by severity\n\n")
	b.WriteString("One entry per risky grant, at the worst severity of the rule hits it holds.\n\n")
	b.WriteString("| Severity | Entries | Rule hits | Platform-managed |\n")
	b.WriteString("|---|---:|---:|---:|\n")
	for _, c := range v.Counts {
		fmt.Fprintf(b, "| %s | %d | %d | %d |\n", c.Severity, c.Main, c.Hits, c.Infra)
	}
	fmt.Fprintf(b, "| **Total** | **%d** | **%d** | **%d** |\n\n", v.Total, v.TotalHits, v.InfraTotal)
}

func writeSummary(b textWriter, v view) {
	b.WriteString("## Summary of findings\n\n")
	if len(v.Findings) == 0 {
		b.WriteString("No findings: no rule matched a subject outside the platform-managed bindings.\n\n")
		return
	}
	b.WriteString("| # | Severity | Issue | Principal | Scope | Action |\n")
	b.WriteString("|---:|---|---|---|---|---|\n")
	for _, f := range v.Findings {
		title := md(f.Title)
		if f.Conditional {
			title += " (conditional)"
		}
		if f.Pivot > 0 {
			title += fmt.Sprintf(" (closed by [choke point %d](#choke-%d))", f.Pivot, f.Pivot)
		}
		fmt.Fprintf(b, "| [%d](#%s) | %s | %s | %s | %s | %s |\n",
			f.Number, f.Anchor, f.Severity, title, md(f.Subject), md(f.Scope), f.Action)
	}
	b.WriteString("\nActions: **Revoke**: " + actionMeaning[ActionRevoke] + "; **Investigate**: " + actionMeaning[ActionInvestigate] +
		"; **Review**: " + actionMeaning[ActionReview] + "; **Reduce scope**: " + actionMeaning[ActionReduce] +
		"; **Accept with justification**: " + actionMeaning[ActionAccept] + "; **Reconfigure**: " + actionMeaning[ActionReconfigure])
	for _, a := range v.CredentialActions() {
		b.WriteString("; **" + string(a) + "**: " + actionMeaning[a])
	}
	b.WriteString(".\n\n")
}

// CredentialActions are the application credential actions some finding
// of the summary takes: the legend names them only then.
func (v view) CredentialActions() []Action {
	var out []Action
	for _, a := range []Action{ActionRemoveCredential, ActionRotateCredential} {
		if slices.ContainsFunc(v.Findings, func(f *findingView) bool { return f.Action == a }) {
			out = append(out, a)
		}
	}
	return out
}

func writeHistory(b textWriter, v view) {
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

func writeIdentity(b textWriter, v view) {
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

func writePermission(b textWriter, v view) {
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
func reviewFor(v view, f *findingView) *reviewItem {
	for i := range v.Review {
		for _, n := range v.Review[i].Findings {
			if n == f.Number {
				return &v.Review[i]
			}
		}
	}
	return nil
}

// subjectMissingText follows the subject of a finding whose ServiceAccount
// the snapshot lacks (Finding.subject_missing).
const subjectMissingText = "this ServiceAccount does not exist in the snapshot: the binding is a latent grant that whoever creates it receives"

func writeFinding(b textWriter, f *findingView, v view) {
	fmt.Fprintf(b, "\n### <a id=\"%s\"></a>%d. %s: %s\n\n", f.Anchor, f.Number, f.Severity, md(f.Title))
	fmt.Fprintf(b, "- **Issue:** %s (rule %s, finding %s); **Severity:** %s; %s\n", md(f.Title), md(f.RuleID), md(f.ID), f.Severity, md(f.SeverityReason))
	if a, ok := v.returnedFor(f); ok {
		fmt.Fprintf(b, "- **Back from a risk acceptance: %s.** %s (%s)\n", a.Status, md(a.Detail), md(a.acceptanceLine()))
	}
	who := md(f.Subject)
	if item := reviewFor(v, f); item != nil && len(item.Members) > 0 {
		who += fmt.Sprintf("; %s through the group (access review [R%d](#%s))", item.Reach(), item.Number, item.Anchor)
	}
	if f.SubjectMissing {
		who += "; " + subjectMissingText
	}
	if f.RoleMissing {
		fmt.Fprintf(b, "- **Who is affected:** %s; **Current access:** %s; the role is missing: the binding references a role that does not exist\n", who, md(f.Access))
	} else {
		fmt.Fprintf(b, "- **Who is affected:** %s; **Current access:** %s\n", who, md(f.Access))
	}
	if e := f.Entry; e != nil {
		fmt.Fprintf(b, "- **Capabilities:** %s\n", mdList(e.Capabilities, "none recorded"))
		if f.kind == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			fmt.Fprintf(b, "- **Runs as it:** %s\n", mdList(e.Workloads, "no workload of the snapshot"))
		}
		if len(e.Narrower) > 0 {
			fmt.Fprintf(b, "- **%s:** %s\n", e.NarrowerLabel(), mdList(e.Narrower, ""))
		}
	}
	if f.Entry != nil && f.Entry.Suggestion != "" {
		fmt.Fprintf(b, "- **Action:** %s: %s\n", f.Action, md(f.Entry.Suggestion))
	} else {
		fmt.Fprintf(b, "- **Action:** %s: %s\n", f.Action, actionMeaning[f.Action])
	}
	if e := f.Entry; e != nil && e.HitCount() > 1 {
		fmt.Fprintf(b, "- **Rule hits (%d, each a result in report.json and SARIF):** %s\n", e.HitCount(), md(e.HitsText()))
	}
	b.WriteString("\n**Why it matters.** ")
	if f.Description != "" {
		fmt.Fprintf(b, "%s ", md(f.Description))
	}
	fmt.Fprintf(b, "Controls: %s.\n", mdList(f.ControlTexts, "none"))
	if len(f.Folded) > 0 {
		fmt.Fprintf(b, "This finding also stands for %s on the same grant (their controls are listed above).\n", strings.Join(f.Folded, ", "))
	}
	b.WriteString("\n**What it allows**\n\n")
	if len(f.Steps) > 0 {
		writeSteps(b, f.Steps)
	} else {
		writeRules(b, f.Rules)
	}
	b.WriteString("\n**How to fix it.**")
	writeFix(b, f.Fix)
	writeNote(b, f)
}

// writeFix writes the explanation as plain text and the commands that run
// as written in a shell block of their own.
func writeFix(b textWriter, fx fixView) {
	if len(fx.Prose) > 0 {
		fmt.Fprintf(b, " %s", md(fx.Text()))
	}
	if len(fx.Commands) == 1 && !strings.Contains(fx.Commands[0], "`") {
		// One command fits on the line, as inline code.
		fmt.Fprintf(b, " Run: `%s`\n", fx.Commands[0])
		return
	}
	b.WriteString("\n")
	if len(fx.Commands) > 0 {
		fence := codeFence(fx.Block())
		fmt.Fprintf(b, "\n%ssh\n%s\n%s\n", fence, fx.Block(), fence)
	}
}

// writeSteps writes an escalation path step by step, each with the grant
// behind it and that role's rules only, and the assumption of a step the
// snapshot cannot prove.
func writeSteps(b textWriter, steps []stepView) {
	for i, st := range steps {
		fmt.Fprintf(b, "%d. %s \u2014[%s]\u2192 %s", i+1, md(st.From), md(st.Capability), md(st.To))
		if st.Assumption != "" {
			fmt.Fprintf(b, " **Conditional:** assumes %s.", md(st.Assumption))
		}
		if st.Granted && !st.Own {
			fmt.Fprintf(b, " (via %s, %s)", md(st.Binding), md(st.Role))
		}
		b.WriteString("\n")
		if !st.Own {
			continue
		}
		fmt.Fprintf(b, "\n   Granted by %s, %s:\n\n", md(st.Binding), md(st.Role))
		var t strings.Builder
		writeRules(&t, st.Rules)
		for line := range strings.SplitSeq(strings.TrimRight(t.String(), "\n"), "\n") {
			fmt.Fprintf(b, "   %s\n", line)
		}
		b.WriteString("\n")
	}
}

// writeChoke writes the choke points: for each, the binding, how many
// proven paths its removal closes, what the removal costs, the command,
// and the paths grouped under it.
func writeChoke(b textWriter, v view) {
	if len(v.Choke) == 0 {
		return
	}
	b.WriteString("## Choke points\n\n")
	b.WriteString("Bindings whose removal alone closes proven escalation paths to cluster-admin, chosen greedily (the one closing the most first). Each path is listed under the first choke point that closes it.\n")
	for _, c := range v.Choke {
		fmt.Fprintf(b, "\n<a id=\"%s\"></a>\n\n### Choke point %d: %s\n\n", c.Anchor, c.Number, md(c.Binding))
		fmt.Fprintf(b, "%s.\n\n", md(c.Text()))
		b.WriteString("- **Cost of removing it:**")
		if len(c.Costs) == 0 {
			b.WriteString(" no subject of the binding loses a capability of note\n")
		} else {
			b.WriteString("\n")
			for _, x := range c.Costs {
				fmt.Fprintf(b, "  - %s loses %s\n", md(x.Subject), md(x.Capabilities))
			}
		}
		if len(c.Also) > 0 {
			refs := make([]string, len(c.Also))
			for i, n := range c.Also {
				refs[i] = fmt.Sprintf("[#%d](#finding-%d)", n, n)
			}
			fmt.Fprintf(b, "- **Also closes:** %s (grouped under an earlier choke point)\n", strings.Join(refs, ", "))
		}
		b.WriteString("\n")
		if Runnable(c.Command) {
			fence := codeFence(c.Command)
			fmt.Fprintf(b, "%ssh\n%s\n%s\n\n", fence, c.Command, fence)
		}
		if len(c.Paths) > 0 {
			fmt.Fprintf(b, "Paths it closes (%d):\n\n", len(c.Paths))
			for _, f := range c.Paths {
				fmt.Fprintf(b, "- [#%d](#%s) %s: %s\n", f.Number, f.Anchor, md(f.Subject), md(pathLine(f)))
			}
			b.WriteString("\n")
		}
	}
}

// pathLine is a path in one line: its nodes joined by arrows.
func pathLine(f *findingView) string {
	if len(f.Steps) == 0 {
		return strings.Join(f.Path, " ; ")
	}
	nodes := []string{f.Steps[0].From}
	for _, st := range f.Steps {
		nodes = append(nodes, st.To)
	}
	return strings.Join(nodes, " \u2192 ")
}

func writePaths(b textWriter, v view) {
	b.WriteString("## Escalation paths\n\n")
	if len(v.Paths) == 0 {
		b.WriteString("No finding carries a multi-step escalation path.\n\n")
		return
	}
	for _, c := range v.Choke {
		if len(c.Paths) == 0 {
			continue
		}
		fmt.Fprintf(b, "### Through choke point %d: %s\n\n", c.Number, md(c.Binding))
		for _, f := range c.Paths {
			writePath(b, f)
		}
	}
	if len(v.Ungrouped) > 0 {
		if len(v.Choke) > 0 {
			b.WriteString("### Paths no single removal closes, and conditional paths\n\n")
		}
		for _, f := range v.Ungrouped {
			writePath(b, f)
		}
	}
}

func writePath(b textWriter, f *findingView) {
	fmt.Fprintf(b, "**[#%d](#%s) %s** (%s", f.Number, f.Anchor, md(f.Title), f.Severity)
	if f.Conditional {
		b.WriteString(", conditional")
	}
	b.WriteString(")\n\n")
	if len(f.Steps) == 0 {
		for i, step := range f.Path {
			fmt.Fprintf(b, "%d. %s\n", i+1, md(step))
		}
		b.WriteString("\n")
		return
	}
	for i, st := range f.Steps {
		fmt.Fprintf(b, "%d. %s \u2014[%s]\u2192 %s", i+1, md(st.From), md(st.Capability), md(st.To))
		if st.Granted {
			fmt.Fprintf(b, " (via %s, %s)", md(st.Binding), md(st.Role))
		}
		if st.Assumption != "" {
			fmt.Fprintf(b, " **Conditional:** assumes %s.", md(st.Assumption))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func writeReview(b textWriter, v view) {
	b.WriteString("## Access review\n\n")
	if len(v.Review) == 0 {
		b.WriteString("No user or group outside the platform holds access through a binding.\n\n")
		return
	}
	b.WriteString("One item per group and per directly bound user that holds access, and per user and group reaching the cluster through Azure (an admin group, a role assignment that lists credentials, runs commands or grants Kubernetes permissions through Azure RBAC), with the route spelled out; cluster-wide access first. ")
	b.WriteString("For each, the reviewer ticks one decision and signs: **Confirmed** (the access is needed as it is), ")
	b.WriteString("**Requires justification** (the owner must explain it by the next review), or **Revoke** (remove it).\n")
	for _, item := range v.Review {
		fmt.Fprintf(b, "\n<a id=\"%s\"></a>\n\n### R%d. %s\n\n", item.Anchor, item.Number, md(item.Subject))
		if item.Key != "" {
			fmt.Fprintf(b, "Item key: `%s` (secureaudit review decide %s --decision ...)\n\n", item.Key, item.Key)
		}
		b.WriteString("**Access held**\n\n")
		for _, g := range item.Grants {
			fmt.Fprintf(b, "- %s through %s, %s\n", md(g.RoleText()), md(g.Binding), md(g.Scope))
			if g.Route != "" {
				fmt.Fprintf(b, "  - route: %s\n", md(g.Route))
			}
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

func writePeople(b textWriter, item reviewItem) {
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
	fmt.Fprintf(b, "- **Members:** %s, nested groups included (%d %s, %d disabled)\n", item.Reach(), item.Guests, plural(item.Guests, "guest", "guests"), item.Disabled)
	for _, m := range item.Members {
		if fl := m.Flags(); fl != "" {
			fmt.Fprintf(b, "  - %s (%s)\n", md(m.Text()), fl)
		} else {
			fmt.Fprintf(b, "  - %s\n", md(m.Text()))
		}
	}
	owners := make([]string, len(item.Owners))
	for i, o := range item.Owners {
		owners[i] = o.OwnerText()
	}
	fmt.Fprintf(b, "- **Owners:** %s\n", mdList(owners, "none recorded"))
}

// builtinMeaning explains Kubernetes' built-in groups to a reviewer.
const builtinMeaning = "system:authenticated is every identity that can sign in to the cluster, system:masters bypasses all authorization"

func writeGood(b textWriter, v view) {
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

func writeRules(b textWriter, rules []*secureauditv1.PolicyRule) {
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

// writeInformational lists the informational hits (entry.Informational):
// one line each, since they ask nothing of the reviewer but count against
// their controls.
func writeInformational(b textWriter, v view) {
	if len(v.Informational) == 0 {
		return
	}
	b.WriteString("## Informational hits\n\n")
	b.WriteString("Rule hits at Info severity that ask nothing of the reviewer, so they are not entries: an installed component reading named Secrets of its own namespace, a ClusterRole adding to admin, edit or view only writes on result records (policy reports). ")
	b.WriteString("Each is a result in report.json and SARIF, and counts against its controls as any other hit.\n\n")
	b.WriteString("| # | Rule | Title | Subject | Access | Why informational |\n")
	b.WriteString("|---:|---|---|---|---|---|\n")
	for _, f := range v.Informational {
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s |\n", f.Number, md(f.RuleID), md(f.Title), md(f.Subject), md(f.Access), md(f.SeverityReason))
	}
	b.WriteString("\n")
}

func writeAppendix(b textWriter, v view) {
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
