package rules_test

import (
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// TestServicePrincipalSubject: a ClusterRoleBinding that binds an
// application as a User named by its object ID (as AKS with Entra does)
// gives findings whose subject is marked as a service principal with the
// directory's name, so that no report shows it as a person; a person
// bound the same way is not marked.
func TestServicePrincipalSubject(t *testing.T) {
	const (
		spID   = "6e3b9d2a-4c7f-4a1e-8b5d-2f9c0a7e6d14"
		userID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	)
	admin := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"}
	user := func(name string) []*secureauditv1.Subject {
		return []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: name}}
	}
	chunk := &secureauditv1.SnapshotChunk{
		ClusterRoles: []*secureauditv1.ClusterRole{{
			Meta:  &secureauditv1.ObjectMeta{Name: "cluster-admin"},
			Rules: []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}}},
		}},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{
			{Meta: &secureauditv1.ObjectMeta{Name: "sync-admin"}, RoleRef: admin, Subjects: user(spID)},
			{Meta: &secureauditv1.ObjectMeta{Name: "dana-admin"}, RoleRef: admin, Subjects: user(userID)},
		},
	}
	dir := &secureauditv1.DirectoryChunk{
		ServicePrincipals: []*secureauditv1.DirectoryServicePrincipal{{Id: spID, DisplayName: "app-web-content-sync", ServicePrincipalType: "Application"}},
		Users:             []*secureauditv1.DirectoryUser{{Id: userID, UserPrincipalName: "dana@example.com", DisplayName: "Dana", AccountEnabled: true}},
	}
	findings := rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, []*secureauditv1.DirectoryChunk{dir}))
	seen := map[string]int{}
	for _, f := range findings {
		s := f.GetSubject()
		switch f.GetBinding().GetName() {
		case "sync-admin":
			seen["sp"]++
			if !s.GetServicePrincipal() || s.GetDisplayName() != "app-web-content-sync" || s.GetName() != spID {
				t.Errorf("%s through sync-admin: subject %v, want the service principal app-web-content-sync", f.GetRuleId(), s)
			}
		case "dana-admin":
			seen["user"]++
			if s.GetServicePrincipal() || s.GetDisplayName() != "Dana" {
				t.Errorf("%s through dana-admin: subject %v, want the person Dana", f.GetRuleId(), s)
			}
		}
	}
	if seen["sp"] == 0 || seen["user"] == 0 {
		t.Fatalf("findings through each binding: %v (want both)", seen)
	}
}
