package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
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

// TestEmptyResourceName: resourceNames [""] allows every request without a
// name (list and watch read every secret, create makes any pod), so it
// restricts nothing and lowers no severity, unlike resourceNames [db].
func TestEmptyResourceName(t *testing.T) {
	rule := func(names ...string) []*secureauditv1.PolicyRule {
		return []*secureauditv1.PolicyRule{
			{Verbs: []string{"list"}, ApiGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: names},
			{Verbs: []string{"create"}, ApiGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: names},
		}
	}
	chunk := &secureauditv1.SnapshotChunk{
		Namespaces: []*secureauditv1.Namespace{{Meta: &secureauditv1.ObjectMeta{Name: "team-a"}}},
		Roles: []*secureauditv1.Role{
			{Meta: &secureauditv1.ObjectMeta{Name: "empty", Namespace: "team-a"}, Rules: rule("")},
			{Meta: &secureauditv1.ObjectMeta{Name: "named", Namespace: "team-a"}, Rules: rule("db")},
		},
		RoleBindings: []*secureauditv1.RoleBinding{
			{Meta: &secureauditv1.ObjectMeta{Name: "empty", Namespace: "team-a"}, RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "empty"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "e"}}},
			{Meta: &secureauditv1.ObjectMeta{Name: "named", Namespace: "team-a"}, RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "named"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "n"}}},
		},
	}
	got := map[string][]string{}
	for _, f := range rules.Evaluate(build(chunk, nil)) {
		got[f.GetSubject().GetName()] = append(got[f.GetSubject().GetName()], f.GetRuleId()+" "+f.GetSeverityReason())
	}
	e := strings.Join(got["e"], "\n")
	for _, want := range []string{rules.SecretsRead + " ", rules.PodCreate + " "} {
		if !strings.Contains(e, want) {
			t.Errorf("resourceNames [\"\"]: no %s finding:\n%s", want, e)
		}
	}
	if strings.Contains(e, "restricted by resourceNames") {
		t.Errorf("resourceNames [\"\"] lowered a severity:\n%s", e)
	}
	n := strings.Join(got["n"], "\n")
	if strings.Contains(n, rules.PodCreate+" ") {
		t.Errorf("resourceNames [db] cannot allow a create, yet:\n%s", n)
	}
	if !strings.Contains(n, "restricted by resourceNames") {
		t.Errorf("resourceNames [db] lowered no severity:\n%s", n)
	}
}
