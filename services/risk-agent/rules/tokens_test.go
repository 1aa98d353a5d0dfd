package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	"secureaudit.dev/services/risk-agent/rules"
)

// TestProjectedTokenSeen: an operator that turns automount off but mounts
// its token through a projected volume (Linkerd's identity controller, see
// testdata/rules/RBAC-012/SOURCE.md) holds its token, and the finding says
// which way the token arrives.
func TestProjectedTokenSeen(t *testing.T) {
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", rules.TokenAutomount))
	for _, f := range rules.Evaluate(build(chunk, d)) {
		if f.GetRuleId() != rules.TokenAutomount || f.GetSubject().GetName() != "linkerd-identity" {
			continue
		}
		for _, want := range []string{"automount off", "projected serviceAccountToken in volume kube-api-access", "audience identity.l5d.io"} {
			if !strings.Contains(f.GetDescription(), want) {
				t.Errorf("description %q does not say %q", f.GetDescription(), want)
			}
		}
		return
	}
	t.Fatal("no RBAC-012 finding for linkerd/linkerd-identity, which mounts a projected token")
}
