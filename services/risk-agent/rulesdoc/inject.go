package rulesdoc

import (
	"fmt"
	"strings"

	"secureaudit.dev/services/risk-agent/inject"
)

// injectionRules renders the INJ rules of package inject: they scan every
// string the audit reads from the cluster and the directory, not grants.
func injectionRules() string {
	var b strings.Builder
	b.WriteString("\n## Injection rules\n\nThe INJ rules (`services/risk-agent/inject`) scan every string the audit reads from the cluster and the directory (object names, labels, annotations, binding subjects, Entra UPNs, display names, descriptions) for text written to steer a language model. A hit is a finding (base severity HIGH, INJ-004 MEDIUM; control " + inject.Control + "), a CC7.2 anomaly, and the string is withheld from every prompt.\n\n| ID | detects |\n|---|---|\n")
	for _, c := range inject.Categories() {
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", c.RuleID(), strings.ToLower(c.RuleID()), c)
	}
	for _, c := range inject.Categories() {
		fmt.Fprintf(&b, "\n### %s\n\n**%s**. %s\n", c.RuleID(), c, c.Description())
	}
	b.WriteString("\nFixture: `services/risk-agent/inject/testdata/rules/INJ-007/` (INJ-001 to INJ-006: the corpus `services/risk-agent/inject/testdata/injections.txt`, one expected rule per string).\n")
	return b.String()
}
