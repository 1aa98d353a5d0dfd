package regression

import (
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func finding(id, rule string, sev secureauditv1.Severity, subject string) *secureauditv1.Finding {
	return &secureauditv1.Finding{Id: id, RuleId: rule, Severity: sev,
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: subject}}
}

func TestCompare(t *testing.T) {
	base := []*secureauditv1.Finding{
		finding("00000000000000a1", "RBAC-001", secureauditv1.Severity_SEVERITY_CRITICAL, "ops"),
		finding("00000000000000a2", "RBAC-002", secureauditv1.Severity_SEVERITY_HIGH, "devs"),
	}
	summary := &secureauditv1.AssessSummary{CatalogueVersion: "1", ReasoningProvider: "none"}
	approved := (&Output{Findings: base, Summary: summary}).Approve()
	c := &Case{Name: "c", Approved: approved}
	tests := []struct {
		name      string
		findings  []*secureauditv1.Finding
		reasoning *secureauditv1.Reasoning
		summary   *secureauditv1.AssessSummary
		pass      bool
		want      string
	}{
		{"identical", base, nil, summary, true, ""},
		{"new finding", append(base[:2:2], finding("00000000000000a3", "RBAC-003", secureauditv1.Severity_SEVERITY_LOW, "x")), nil, summary, false, "new"},
		{"absent finding", base[:1], nil, summary, false, "absent"},
		{"re-scored finding", []*secureauditv1.Finding{base[0], finding("00000000000000a2", "RBAC-002", secureauditv1.Severity_SEVERITY_LOW, "devs")}, nil, summary, false, "changed"},
		{"catalogue changed", base, nil, &secureauditv1.AssessSummary{CatalogueVersion: "2", ReasoningProvider: "none"}, false, "catalogue version"},
		{"invented finding ID", base, &secureauditv1.Reasoning{Provider: "openai", ExecutiveSummary: "s",
			Annotations: []*secureauditv1.FindingAnnotation{{FindingId: "00000000000000a1"}, {FindingId: "00000000000000a2"}, {FindingId: "00000000000000ff"}}}, summary, false, "does not exist"},
		{"finding not covered", base, &secureauditv1.Reasoning{Provider: "openai", ExecutiveSummary: "s",
			Annotations: []*secureauditv1.FindingAnnotation{{FindingId: "00000000000000a1"}}}, summary, false, "without an annotation"},
		{"deterministic text covers nothing and passes", base, &secureauditv1.Reasoning{Provider: "none", ExecutiveSummary: "s"}, summary, true, ""},
		{"empty summary", base, &secureauditv1.Reasoning{Provider: "none"}, summary, false, "executive summary"},
		{"tokens outside the band", base, nil, &secureauditv1.AssessSummary{CatalogueVersion: "1", ReasoningProvider: "none",
			ModelCalls: []*secureauditv1.ModelCall{{InputTokens: 1000}}}, false, "outside the approved band"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Compare(c, &Output{Findings: tc.findings, Summary: tc.summary, Reasoning: tc.reasoning})
			if res.GetPassed() != tc.pass {
				t.Fatalf("passed = %v, want %v: %+v", res.GetPassed(), tc.pass, res)
			}
			all := strings.Join(append(append(append(append([]string{}, res.GetProblems()...), prefix("new", res.GetNew())...), prefix("absent", res.GetAbsent())...), prefix("changed", res.GetChanged())...), "\n")
			if !strings.Contains(all, tc.want) {
				t.Errorf("result %q does not mention %q", all, tc.want)
			}
		})
	}
}

func prefix(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + " " + x
	}
	return out
}

func TestEmbeddedCases(t *testing.T) {
	cases, err := LoadCases()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range cases {
		names[c.Name] = true
		if len(c.Input) == 0 || len(c.Approved.Findings) == 0 || c.Approved.CatalogueVersion == "" {
			t.Errorf("case %s is incomplete", c.Name)
		}
	}
	for _, want := range []string{"example", "example-no-directory", "minimal"} {
		if !names[want] {
			t.Errorf("no reference case %s", want)
		}
	}
}
