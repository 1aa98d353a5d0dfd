package paths_test

import (
	"path/filepath"
	"testing"

	"buf.build/go/protovalidate"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/services/risk-agent/synth"
)

// TestSyntheticFindingsValid runs the whole engine over a synthetic cluster
// (wildcards, escalation verbs, aggregation, dangling references, pods) and
// validates every finding against the contract: long permission lists must
// not break a field's length limit, or the audit would fail at the edge.
func TestSyntheticFindingsValid(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	snaps := []*snapshot.Snapshot{snapshot.Build([]*secureauditv1.SnapshotChunk{synth.Cluster(3, 5000)}, nil)}
	// A role granting '*' on the core group and every named API group is the
	// worst case for the lists in severity reasons and descriptions.
	wide := &secureauditv1.SnapshotChunk{
		ClusterRoles: []*secureauditv1.ClusterRole{
			{Meta: &secureauditv1.ObjectMeta{Name: "wide"}, Rules: []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, ApiGroups: []string{"", "apps", "batch", "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "kyverno.io", "certificates.k8s.io", "apiextensions.k8s.io", "networking.k8s.io", "discovery.k8s.io", "gateway.networking.k8s.io", "events.k8s.io", "authentication.k8s.io", "templates.gatekeeper.sh"}, Resources: []string{"*"}}}},
			{Meta: &secureauditv1.ObjectMeta{Name: "view", Labels: map[string]string{}}, AggregationSelectors: []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}}}},
			{Meta: &secureauditv1.ObjectMeta{Name: "wide-view", Labels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}}, Rules: []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, ApiGroups: []string{"", "apps", "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "kyverno.io"}, Resources: []string{"*"}}}},
		},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Name: "wide"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "wide"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "system:authenticated"}},
		}},
	}
	snaps = append(snaps, snapshot.Build([]*secureauditv1.SnapshotChunk{wide}, nil), load(t, filepath.Join("testdata", "rules", paths.RuleID)))
	for i, s := range snaps {
		a := rules.Analyze(s)
		r := paths.Analyze(a)
		fs := append(a.Findings(), r.Findings...)
		if err := v.Validate(&secureauditv1.AssessSummary{FindingCount: 1, CatalogueVersion: "x", ReasoningProvider: "none", Counts: &secureauditv1.ObjectCounts{}, ChokePoints: r.ChokePoints}); err != nil {
			t.Errorf("snapshot %d: choke points invalid: %v", i, err)
		}
		if len(fs) == 0 {
			t.Fatalf("snapshot %d: no findings", i)
		}
		seen := map[string]bool{}
		for _, f := range fs {
			if err := v.Validate(f); err != nil {
				t.Errorf("snapshot %d: %s finding invalid: %v", i, f.GetRuleId(), err)
			}
			if seen[f.GetId()] {
				t.Errorf("snapshot %d: duplicate finding id %s (%s)", i, f.GetId(), f.GetRuleId())
			}
			seen[f.GetId()] = true
		}
	}
}
