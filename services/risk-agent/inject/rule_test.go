package inject

import (
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
)

// TestRule: a registered category's rule is the registry's entry; one not
// registered (here a category number no detector uses) still gives a
// well-formed injection rule, so that a hit never stops the audit, while
// registry.Check reports it.
func TestRule(t *testing.T) {
	if got, want := HiddenText.rule(), registry.MustLookup("INJ-004"); got.Title != want.Title || got.Severity != want.Severity || got.Rationale != want.Rationale {
		t.Errorf("INJ-004 rule %+v, want the registry's %+v", got, want)
	}
	unknown := Category(99).rule()
	if unknown.Family != registry.Injection || unknown.Severity != secureauditv1.Severity_SEVERITY_HIGH || len(unknown.Controls) != 1 || unknown.Controls[0] != Control {
		t.Errorf("fallback rule %+v", unknown)
	}
	f := unknown.Finding(registry.Hit{ID: "0123456789abcdef", Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}})
	if registry.Check(f) == nil {
		t.Error("registry.Check accepted a finding of an unregistered rule")
	}
}
