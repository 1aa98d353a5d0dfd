package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	"secureaudit.dev/services/risk-agent/rules"
)

// TestControllerTable: every entry of the declared table is complete and
// cites an https source.
func TestControllerTable(t *testing.T) {
	version, table := rules.Controllers()
	if version == "" || len(table) < 6 {
		t.Fatalf("controller table version %q with %d entries", version, len(table))
	}
	for _, c := range table {
		if c.Group == "" || len(c.Resources) == 0 || c.ServiceAccount == "" || c.Does == "" || c.Assumption == "" || !strings.HasPrefix(c.Source, "https://") {
			t.Errorf("incomplete entry %+v", c)
		}
	}
}

// TestControllerEscalationText: the finding names the controller
// ServiceAccount and the binding that makes it privileged, and states the
// assumption it rests on.
func TestControllerEscalationText(t *testing.T) {
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", rules.ControllerEscalation))
	want := map[string][]string{
		"dev1": {"ServiceAccount flux-system/kustomize-controller (every verb on every resource (cluster-admin equivalent), via ClusterRoleBinding cluster-reconciler-flux-system)",
			"ServiceAccount flux-system/helm-controller", "Conditional: it assumes the controller runs without the multi-tenancy lockdown"},
		"dev3":      {"ServiceAccount argocd/argocd-application-controller", "through create applications, update applications, patch applications", "AppProject allows"},
		"pkg-admin": {"ServiceAccount crossplane-system/crossplane (", "via ClusterRoleBinding crossplane)", "https://github.com/crossplane/crossplane/"},
	}
	got := map[string]string{}
	for _, f := range rules.Evaluate(build(chunk, d)) {
		if f.GetRuleId() == rules.ControllerEscalation {
			got[f.GetSubject().GetName()] = f.GetDescription() + " | " + f.GetSeverityReason()
		}
	}
	for sub, parts := range want {
		for _, p := range parts {
			if !strings.Contains(got[sub], p) {
				t.Errorf("%s: %q lacks %q", sub, got[sub], p)
			}
		}
	}
	if r := got["pkg-admin"]; !strings.Contains(r, "the controller holds less than cluster-admin: -1 -> MEDIUM") {
		t.Errorf("pkg-admin severity reason: %q", r)
	}
}

// TestAggregationText: RBAC-036 names what a role adds to admin, edit or
// view, each write once, and a privileged controller its writes reach.
func TestAggregationText(t *testing.T) {
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", rules.AggregatesIntoBuiltin))
	want := map[string]string{
		"debugger":          "Aggregates into edit and adds patch pods/ephemeralcontainers.",
		"widget-editor":     "Aggregates into admin, edit and adds create widgets in example.com, update widgets in example.com, delete widgets in example.com.",
		"star-in-crd-group": "Aggregates into admin and adds every verb on every resource in example.com.",
		"flux-edit":         "the writes reach the rights of the privileged controller ServiceAccount flux-system/kustomize-controller (kustomize.toolkit.fluxcd.io) (see RBAC-041).",
	}
	got := map[string]string{}
	for _, f := range rules.Evaluate(build(chunk, d)) {
		if f.GetRuleId() == rules.AggregatesIntoBuiltin {
			got[f.GetRole().GetName()] = f.GetDescription()
		}
	}
	for role, suffix := range want {
		if !strings.HasSuffix(got[role], suffix) {
			t.Errorf("%s: description %q, want it to end with %q", role, got[role], suffix)
		}
	}
}
