package scope

import (
	"strings"
	"testing"
)

const valid = `apiVersion: secureaudit.dev/v1
kind: AgentScope
metadata: {name: risk-agent, version: 2}
spec:
  domain: test
  identity: spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent
  methods:
    - name: /secureaudit.v1.RiskService/Assess
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]
  credential: {kind: none}
`

func TestParse(t *testing.T) {
	m, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Name != "risk-agent" || len(m.Spec.Methods) != 1 || !strings.HasPrefix(m.Digest(), "sha256:") {
		t.Errorf("parsed %+v digest %s", m, m.Digest())
	}
	other, err := Parse([]byte(strings.Replace(valid, "version: 2", "version: 3", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest() == m.Digest() {
		t.Error("a changed manifest has the same digest")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown field", "domain: test", "domain: test\n  extra: 1", "unknown field"},
		{"wrong kind", "kind: AgentScope", "kind: Other", "kind AgentScope"},
		{"no version", "version: 2", "version: 0", "metadata.version"},
		{"identity outside trust domain", "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent", "spiffe://evil.example/ns/x/sa/y", "spec.identity"},
		{"bad method name", "/secureaudit.v1.RiskService/Assess", "Assess", "not a full method name"},
		{"bad caller", "callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]", "callers: [orchestrator]", "callers[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(valid, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseRejectsDuplicateMethods(t *testing.T) {
	dup := valid + `    - name: /secureaudit.v1.RiskService/Assess
      callers: []
`
	// The appended entry lands under methods, repeating Assess.
	dup = strings.Replace(dup, "  credential: {kind: none}\n", "", 1) + "  credential: {kind: none}\n"
	if _, err := Parse([]byte(dup)); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("err = %v, want listed twice", err)
	}
}
