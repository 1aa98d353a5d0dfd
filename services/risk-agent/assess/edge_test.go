package assess_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
)

// TestAssessEdgeObjects assesses, over the real RPC path with contract
// validation on both ends, a snapshot holding valid objects at the edges of
// the contract: 1,024-character names, a ServiceAccount subject in a
// 1,024-character namespace, a rule with 4,096 verbs, 100 subjects with 1,000-character names, a
// workload running as that ServiceAccount, and objects left out as too large
// to audit. Every finding the rules, paths and identity checks derive from
// them must still pass the contract: one valid object never fails an audit.
func TestAssessEdgeObjects(t *testing.T) {
	c := client(t)
	longName := strings.Repeat("r", 1024)
	longNS := "Team." + strings.Repeat("n", 1019)
	saName := strings.Repeat("s", 253)
	verbs := make([]string, 4096)
	for i := range verbs {
		verbs[i] = fmt.Sprintf("v%d", i)
	}
	verbs[0] = "*"
	var subjects []*secureauditv1.Subject
	for i := range 98 {
		subjects = append(subjects, &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: fmt.Sprintf("user-%d-%s", i, strings.Repeat("u", 1000))})
	}
	subjects = append(subjects,
		&secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: saName, Namespace: longNS},
		&secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: saName, Namespace: "team-a"},
	)
	first := &secureauditv1.SnapshotChunk{
		Header:     &secureauditv1.SnapshotHeader{Cluster: "edge", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE, CollectedAt: timestamppb.Now()},
		Namespaces: []*secureauditv1.Namespace{{Meta: &secureauditv1.ObjectMeta{Name: "team-a"}}},
		ClusterRoles: []*secureauditv1.ClusterRole{{
			Meta: &secureauditv1.ObjectMeta{Name: longName},
			Rules: []*secureauditv1.PolicyRule{
				{Verbs: verbs, ApiGroups: []string{"*"}, Resources: []string{"*"}},
				{Verbs: []string{"get", ""}, ApiGroups: []string{""}, Resources: []string{"secrets", ""}, ResourceNames: []string{""}},
			},
		}},
	}
	last := &secureauditv1.SnapshotChunk{
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Name: longName},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: longName},
			Subjects: subjects,
		}},
		ServiceAccounts: []*secureauditv1.ServiceAccount{{Meta: &secureauditv1.ObjectMeta{Name: saName, Namespace: "team-a"}}},
		Workloads: []*secureauditv1.Workload{{
			Meta: &secureauditv1.ObjectMeta{Name: "web", Namespace: "team-a"}, Kind: "Pod", ServiceAccount: saName,
		}},
		Trailer: &secureauditv1.SnapshotTrailer{
			Counts: &secureauditv1.ObjectCounts{Namespaces: 1, ClusterRoles: 1, ClusterRoleBindings: 1, ServiceAccounts: 1, Workloads: 1},
			Unaudited: []*secureauditv1.UnauditedObject{
				{Kind: "ClusterRole", Name: strings.Repeat("h", 1024), Reason: "object too large to audit: 3145800 bytes"},
				{Kind: "RoleBinding", Namespace: "team-a", Name: "hidden", Reason: "object too large to audit: subjects exceeds repeated.max_items"},
			},
			UnauditedCount: 2,
		},
	}
	resps, err := exchange(t, c,
		&secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Header{Header: &secureauditv1.AssessHeader{AuditId: auditID}}},
		snap(first), snap(last))
	if err != nil {
		t.Fatalf("assess failed on valid objects: %v", err)
	}
	ids := map[string]int{}
	for _, r := range resps {
		for _, f := range r.GetFindings().GetFindings() {
			ids[f.GetRuleId()]++
		}
	}
	for _, want := range []string{rules.ClusterAdmin, rules.TooLarge} {
		if ids[want] == 0 {
			t.Errorf("no %s finding; findings by rule: %v", want, ids)
		}
	}
	if ids[rules.TooLarge] != 2 {
		t.Errorf("%d RBAC-050 findings, want 2 (one per object left out)", ids[rules.TooLarge])
	}
}
