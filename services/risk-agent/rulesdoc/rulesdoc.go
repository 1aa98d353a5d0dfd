// Package rulesdoc renders the rules reference (docs/rules.md) from the
// catalogue: every rule of package rules and the escalation-path rule of
// package paths, with its severity, controls, rationale, what triggers it
// and the remediation. A test keeps docs/rules.md in step with the code.
package rulesdoc

import (
	"fmt"
	"strings"

	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
)

// Markdown returns the rules reference.
func Markdown() string {
	all := append(rules.Catalogue(), paths.Rule)
	var b strings.Builder
	b.WriteString("# Rules reference\n\n")
	b.WriteString("<!-- Generated from the catalogue by services/risk-agent/rulesdoc: run `go test ./rulesdoc -update` in services/risk-agent. Do not edit. -->\n\n")
	fmt.Fprintf(&b, "Catalogue version %s: %d rules. Every rule is a pure function of the snapshot; its fixture, `services/risk-agent/%s/testdata/rules/<ID>/`, holds positives and near misses and the exact expected findings.\n\n", rules.CatalogueVersion, len(all), "rules")
	b.WriteString("How severity is computed: each finding starts at its rule's base severity; a grant restricted by resourceNames goes down one level, a cluster-wide grant and a group subject each go up one (CRITICAL at most), and a grant confined to one ordinary namespace stays at HIGH at most (kube-system is not ordinary). Findings about platform-managed grants go to the infrastructure appendix: a grant is platform-managed only when it is recognised as one the platform creates, a binding of the upstream bootstrap policy captured from the API server or of the catalogue of AKS managed add-ons (services/risk-agent/rules/addons), with the same roleRef, naming the subject, through a role that grants nothing beyond the recorded rules; a namespace (kube-system) or a name (system:*, aks*) never makes it so, and system:masters is platform-managed only through the upstream cluster-admin binding. A catalogued add-on role holding more than its entry is reported as RBAC-035 naming the excess. A Role or RoleBinding never grants cluster-scoped resources, so rules on those never fire for them. A grant of every verb on every resource (RBAC-001) implies RBAC-004 and the permission rules RBAC-013 to RBAC-032 and RBAC-040; those are not repeated for it but folded into its finding (Finding.folded), and their controls count towards compliance status as the finding's own.\n\n")
	b.WriteString("| ID | title | base severity | controls |\n|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s |\n", r.ID, strings.ToLower(r.ID), r.Title, severity(r), strings.Join(r.Controls, ", "))
	}
	for _, r := range all {
		fmt.Fprintf(&b, "\n## %s\n\n**%s**. Base severity %s. Controls: %s.\n\n%s\n\n", r.ID, r.Title, severity(r), strings.Join(r.Controls, ", "), r.Description)
		if p := rules.Permissions(r.ID); len(p) > 0 {
			b.WriteString("Fires on any of:")
			if r.ID == rules.CSRApproval || r.ID == rules.BindCreate {
				b.WriteString(" (one permission of each kind is needed: the approval and the signer, or bind and a binding create)")
			}
			b.WriteString("\n\n")
			for _, x := range p {
				fmt.Fprintf(&b, "- `%s`\n", x)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Remediation: %s Each finding carries the exact `kubectl` command for its role or binding.\n", r.Remediation)
		dir := "rules"
		if r.ID == paths.RuleID {
			dir = "paths"
		}
		fmt.Fprintf(&b, "\nFixture: `services/risk-agent/%s/testdata/rules/%s/`.\n", dir, r.ID)
	}
	return b.String()
}

func severity(r rules.Rule) string {
	return strings.TrimPrefix(r.Severity.String(), "SEVERITY_")
}
