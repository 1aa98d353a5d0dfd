package reasoning

import (
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestSummaryCountsInjectionsByFamily: the summary counts the findings of
// the prompt-injection family, as the registry gave it, not rule IDs that
// merely look like one.
func TestSummaryCountsInjectionsByFamily(t *testing.T) {
	high := secureauditv1.Severity_SEVERITY_HIGH
	in := Input{Findings: []*secureauditv1.Finding{
		{RuleId: "INJ-001", Family: secureauditv1.RuleFamily_RULE_FAMILY_INJECTION, Severity: high},
		{RuleId: "INJ-004", Family: secureauditv1.RuleFamily_RULE_FAMILY_INJECTION, Severity: high},
		{RuleId: "RBAC-003", Family: secureauditv1.RuleFamily_RULE_FAMILY_RBAC, Severity: high},
		{RuleId: "INJ-999", Family: secureauditv1.RuleFamily_RULE_FAMILY_RBAC, Severity: high},
	}}
	if got := summaryTemplate(in); !strings.Contains(got, "2 findings report text in cluster or directory data") {
		t.Errorf("summary does not count the 2 injection findings:\n%s", got)
	}
	in.Findings = in.Findings[2:]
	if got := summaryTemplate(in); strings.Contains(got, "steer an AI reviewer") {
		t.Errorf("summary reports injections without any:\n%s", got)
	}
}
