package authz

import (
	"slices"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/scope"
)

const publicManifest = `apiVersion: secureaudit.dev/v1
kind: AgentScope
metadata: {name: orchestrator, version: 1}
spec:
  domain: test
  identity: spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator
  methods:
    - name: /secureaudit.v1.AuditService/GetAudit
      role: viewer
    - name: /secureaudit.v1.AuditService/StartAudit
      role: operator
    - name: /secureaudit.v1.EvidenceService/ExportEvidence
      role: auditor
    - name: /secureaudit.v1.ScopeService/ApproveScope
      role: approver
    - name: /secureaudit.v1.RiskService/Assess
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent]
  credential: {kind: none}
`

func TestCallerPolicy(t *testing.T) {
	callers, err := ParseCallers("callers.yaml", []byte(`apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, operator]
  - path: /ns/ci/sa/*
    roles: [operator]
  - id: spiffe://secureaudit.local/ns/grc/sa/exporter
    methods: [/secureaudit.v1.EvidenceService/ExportEvidence]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := scope.Parse([]byte(publicManifest))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(m, callers)
	if err != nil {
		t.Fatal(err)
	}
	id := func(path string) string { return "spiffe://secureaudit.local" + path }
	for _, tc := range []struct {
		caller string
		allow  []string // method names (the last element) allowed
	}{
		{id("/ns/secureaudit/sa/cli"), []string{"GetAudit", "StartAudit"}},
		{id("/ns/ci/sa/deployer"), []string{"StartAudit"}},
		{id("/ns/ci/sa/deployer/extra"), nil}, // * stays within a segment
		{id("/ns/cix/sa/deployer"), nil},
		{"spiffe://other.example/ns/ci/sa/deployer", nil}, // patterns match the trust domain only
		{id("/ns/grc/sa/exporter"), []string{"ExportEvidence"}},
		{id("/ns/secureaudit/sa/rbac-agent"), []string{"Assess"}}, // the manifest's callers stay
		{id("/ns/secureaudit/sa/risk-agent"), nil},
	} {
		caller, err := parseAny(tc.caller)
		if err != nil {
			t.Fatal(err)
		}
		for _, meth := range m.Spec.Methods {
			short := meth.Name[strings.LastIndex(meth.Name, "/")+1:]
			if got, want := p.Allowed(meth.Name, caller), slices.Contains(tc.allow, short); got != want {
				t.Errorf("%s calling %s: allowed %v, want %v", tc.caller, meth.Name, got, want)
			}
		}
	}
	if p.Allowed("/secureaudit.v1.AuditService/Unknown", identity.ID(identity.CLI)) {
		t.Error("a method the manifest does not list is allowed")
	}
	cli, _ := parseAny(id("/ns/secureaudit/sa/cli"))
	if got := callers.RolesOf(cli); !slices.Equal(got, []Role{Viewer, Operator}) {
		t.Errorf("RolesOf(cli) = %v", got)
	}
}

// TestCallerPolicyErrors: a bad policy file is refused naming the file, the
// line and the entry.
func TestCallerPolicyErrors(t *testing.T) {
	head := "apiVersion: secureaudit.dev/v1\nkind: CallerPolicy\ncallers:\n"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not YAML", "callers: [", "p.yaml: yaml: line 1"},
		{"wrong kind", "apiVersion: secureaudit.dev/v1\nkind: AgentScope\ncallers: []\n", "p.yaml:1: want apiVersion secureaudit.dev/v1 and kind CallerPolicy"},
		{"unknown top-level field", head + "extra: 1\n", `p.yaml:4: unknown field "extra"`},
		{"unknown role", head + "  - id: spiffe://secureaudit.local/ns/a/sa/b\n    roles: [viewer, admin]\n", `p.yaml:5: callers[0]: unknown role "admin" (want viewer, operator, approver, auditor)`},
		{"unknown entry field", head + "  - id: spiffe://secureaudit.local/ns/a/sa/b\n    roles: [viewer]\n  - idd: spiffe://secureaudit.local/ns/a/sa/c\n", `p.yaml:6: callers[1]: unknown field "idd"`},
		{"no identity", head + "  - roles: [viewer]\n", "p.yaml:4: callers[0]: no id or path"},
		{"both", head + "  - id: spiffe://secureaudit.local/ns/a/sa/b\n    path: /ns/a/sa/*\n    roles: [viewer]\n", "callers[0]: give either id or path"},
		{"other trust domain", head + "  - id: spiffe://elsewhere.example/ns/a/sa/b\n    roles: [viewer]\n", "callers[0]: id: SPIFFE ID \"spiffe://elsewhere.example/ns/a/sa/b\" is not in trust domain secureaudit.local"},
		{"relative path", head + "  - path: ns/a/sa/*\n    roles: [viewer]\n", `callers[0]: path "ns/a/sa/*": want an absolute path`},
		{"bad pattern", head + "  - path: /ns/[a/sa/b\n    roles: [viewer]\n", "callers[0]: path \"/ns/[a/sa/b\": syntax error in pattern"},
		{"grants nothing", head + "  - path: /ns/a/sa/b\n", "callers[0]: grants nothing"},
		{"repeated", head + "  - path: /ns/a/sa/b\n    roles: [viewer]\n  - path: /ns/a/sa/b\n    roles: [operator]\n", "p.yaml:6: callers[1]: /ns/a/sa/b is already given at p.yaml:4: callers[0]"},
		{"not a method name", head + "  - path: /ns/a/sa/b\n    methods: [ExportEvidence]\n", `callers[0]: method "ExportEvidence" is not a full method name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCallers("p.yaml", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestCallerPolicyAgainstManifest: a policy naming a method outside the
// public API, or a manifest naming an unknown role, is refused naming it.
func TestCallerPolicyAgainstManifest(t *testing.T) {
	m, err := scope.Parse([]byte(publicManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, meth := range []string{"/secureaudit.v1.AuditService/DeleteEverything", "/secureaudit.v1.RiskService/Assess"} {
		callers, err := ParseCallers("p.yaml", []byte("apiVersion: secureaudit.dev/v1\nkind: CallerPolicy\ncallers:\n  - id: spiffe://secureaudit.local/ns/a/sa/b\n    roles: [viewer]\n  - id: spiffe://secureaudit.local/ns/a/sa/c\n    methods: ["+meth+"]\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewPolicy(m, callers)
		if want := "p.yaml:6: callers[1]: unknown method " + meth + " (not a method of the public API of orchestrator)"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	bad, err := scope.Parse([]byte(strings.Replace(publicManifest, "role: auditor", "role: admin", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy(bad, nil); err == nil || !strings.Contains(err.Error(), `method /secureaudit.v1.EvidenceService/ExportEvidence: unknown role "admin"`) {
		t.Errorf("err = %v, want the unknown role named", err)
	}
}

func parseAny(s string) (spiffeid.ID, error) { return spiffeid.FromString(s) }
