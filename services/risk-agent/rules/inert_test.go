package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
)

// TestInertTable: every entry of the declared table of result-only custom
// resources is complete, cites an https source, and names no wildcard or
// built-in API group (a built-in resource is never a mere record).
func TestInertTable(t *testing.T) {
	version, table := rules.InertResources()
	if version == "" || len(table) == 0 {
		t.Fatalf("inert table version %q with %d entries", version, len(table))
	}
	for _, e := range table {
		if e.Group == "" || !strings.Contains(e.Group, ".") || strings.HasSuffix(e.Group, ".k8s.io") || e.Group == "*" ||
			len(e.Resources) == 0 || e.What == "" || !strings.HasPrefix(e.Source, "https://") {
			t.Errorf("incomplete or built-in entry %+v", e)
		}
		for _, r := range e.Resources {
			if r == "" || r == "*" || strings.Contains(r, "/") {
				t.Errorf("%s: resource %q (name the resource; its subresources follow)", e.Group, r)
			}
		}
	}
}

// TestInformationalHits: the informational RBAC-003 and RBAC-036 hits say
// why they are informational, and keep their rule's controls (compliance
// status counts them as any other hit).
func TestInformationalHits(t *testing.T) {
	for _, tt := range []struct {
		fixture, who, reason, detail string
	}{
		{rules.SecretsRead, "webhook", "only named Secrets of its own namespace, read by an installed component's workload identity: at most INFO -> INFO",
			"The subject is the ServiceAccount a workload of the snapshot runs as, and the Secrets are in its own namespace"},
		{rules.AggregatesIntoBuiltin, "reports-admin", "writes only result records (policy reports) that no controller acts on: at most INFO -> INFO",
			"wgpolicyk8s.io policyreports, clusterpolicyreports: policy reports"},
	} {
		chunk, d := loadFixture(t, filepath.Join("testdata", "rules", tt.fixture))
		found := false
		for _, f := range rules.Evaluate(build(chunk, d)) {
			if f.GetRuleId() != tt.fixture || f.GetSeverity() != secureauditv1.Severity_SEVERITY_INFO {
				continue
			}
			if f.GetSubject().GetName() != tt.who && f.GetRole().GetName() != tt.who {
				continue
			}
			found = true
			if !strings.Contains(f.GetSeverityReason(), tt.reason) {
				t.Errorf("%s %s: severity reason %q lacks %q", tt.fixture, tt.who, f.GetSeverityReason(), tt.reason)
			}
			if !strings.Contains(f.GetDescription(), tt.detail) {
				t.Errorf("%s %s: description %q lacks %q", tt.fixture, tt.who, f.GetDescription(), tt.detail)
			}
			if len(f.GetControls()) == 0 {
				t.Errorf("%s %s: an informational hit without controls", tt.fixture, tt.who)
			}
		}
		if !found {
			t.Errorf("%s: no INFO hit for %s", tt.fixture, tt.who)
		}
	}
}

// TestMutatingPolicyNote: RBAC-024 on a cluster-wide write of Kyverno
// ClusterPolicies says what a mutate or generate rule reaches; on a
// ValidatingAdmissionPolicy or a namespaced Kyverno Policy it does not.
func TestMutatingPolicyNote(t *testing.T) {
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", rules.AdmissionPolicyWrite))
	got := map[string]string{}
	for _, f := range rules.Evaluate(build(chunk, d)) {
		if f.GetRuleId() == rules.AdmissionPolicyWrite {
			got[f.GetSubject().GetName()] = f.GetDescription() + " | " + f.GetSeverity().String()
		}
	}
	const note = "Kyverno ClusterPolicies do more than validate: a mutate rule rewrites any object the API server admits"
	if r := got["reporter"]; !strings.Contains(r, note) || !strings.Contains(r, "as strong as writing a mutating webhook") || !strings.HasSuffix(r, "SEVERITY_CRITICAL") {
		t.Errorf("reporter: %q", r)
	}
	for _, who := range []string{"a1", "a2"} {
		if r, ok := got[who]; !ok || strings.Contains(r, "a mutate rule rewrites any object") {
			t.Errorf("%s: %q (want a finding without the mutating note)", who, r)
		}
	}
}
