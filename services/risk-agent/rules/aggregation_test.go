package rules_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
)

// TestAggregationAsTheController: the rules judge the rules a ClusterRole
// holds once the clusterrole-aggregation controller has run. An aggregated
// role's own rules are replaced by those it selects, so a dangerous rule
// written into it grants nothing, and a dangerous rule it selects is what it
// grants and contributes to edit (RBAC-036).
func TestAggregationAsTheController(t *testing.T) {
	star := &secureauditv1.PolicyRule{Verbs: []string{"*"}, ApiGroups: []string{""}, Resources: []string{"secrets"}}
	proxy := &secureauditv1.PolicyRule{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"nodes/proxy"}}
	harmless := &secureauditv1.PolicyRule{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"configmaps"}}
	sel := func(k string) []*secureauditv1.LabelSelector {
		return []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{k: "true"}}}
	}
	toEdit := map[string]string{"rbac.authorization.k8s.io/aggregate-to-edit": "true"}
	chunk := &secureauditv1.SnapshotChunk{
		ClusterRoles: []*secureauditv1.ClusterRole{
			// own rule dropped: selects the harmless piece
			{Meta: &secureauditv1.ObjectMeta{Name: "dropped", Labels: toEdit}, AggregationSelectors: sel("harmless"), Rules: []*secureauditv1.PolicyRule{star, proxy}},
			{Meta: &secureauditv1.ObjectMeta{Name: "harmless-piece", Labels: map[string]string{"harmless": "true"}}, Rules: []*secureauditv1.PolicyRule{harmless}},
			// own rule harmless, but replaced by the dangerous piece
			{Meta: &secureauditv1.ObjectMeta{Name: "replaced", Labels: toEdit}, AggregationSelectors: sel("danger"), Rules: []*secureauditv1.PolicyRule{harmless}},
			{Meta: &secureauditv1.ObjectMeta{Name: "danger-piece", Labels: map[string]string{"danger": "true"}}, Rules: []*secureauditv1.PolicyRule{star, proxy}},
		},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{
			{Meta: &secureauditv1.ObjectMeta{Name: "b1"}, RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "dropped"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "d"}}},
			{Meta: &secureauditv1.ObjectMeta{Name: "b2"}, RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "replaced"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "r"}}},
		},
	}
	got := map[string][]string{}
	for _, f := range rules.Evaluate(build(chunk, nil)) {
		switch id := f.GetRuleId(); id {
		case rules.SecretsRead, rules.AggregatesIntoBuiltin:
			who := f.GetSubject().GetName()
			if who == "" {
				who = "role " + f.GetRole().GetName()
			}
			got[who] = append(got[who], id)
		}
	}
	want := map[string][]string{
		"r":             {rules.SecretsRead},
		"role replaced": {rules.AggregatesIntoBuiltin},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}
