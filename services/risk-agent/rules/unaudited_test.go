package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	"secureaudit.dev/services/risk-agent/rules"
)

// TestUnauditedNamesObjects checks that each RBAC-050 finding names the
// object left out, with the command to read it, and that the last one counts
// the objects the trailer did not name.
func TestUnauditedNamesObjects(t *testing.T) {
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", rules.TooLarge))
	var descs, fixes []string
	for _, f := range rules.Evaluate(build(chunk, d)) {
		if f.GetRuleId() == rules.TooLarge {
			descs = append(descs, f.GetDescription())
			fixes = append(fixes, f.GetRemediation())
		}
	}
	all := strings.Join(descs, "\n")
	for _, want := range []string{
		"Left out: ClusterRole huge (object too large to audit: 3145800 bytes",
		"Left out: RoleBinding team-a/many-subjects (object too large to audit: subjects exceeds repeated.max_items)",
		"Left out: Pod team-a/big-pod (object too large to audit: meta.annotations exceeds map.max_pairs). 2 more objects were left out and are not named here.",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no finding says %q; descriptions:\n%s", want, all)
		}
	}
	if got := strings.Join(fixes, "\n"); !strings.Contains(got, "kubectl get pod big-pod -n team-a -o yaml") {
		t.Errorf("remediations lack the command to read the pod:\n%s", got)
	}
}
