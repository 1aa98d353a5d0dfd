package review

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const groupID = "3f2a9c1e-55d4-4a8b-9e21-0c6f7d8b9a10"

func meta(name, ns string) *secureauditv1.ObjectMeta {
	return &secureauditv1.ObjectMeta{Name: name, Namespace: ns}
}

func user(name string) *secureauditv1.Subject {
	return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: name}
}

func group(name string) *secureauditv1.Subject {
	return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: name}
}

func chunks() []*secureauditv1.SnapshotChunk {
	return []*secureauditv1.SnapshotChunk{{
		ClusterRoles: []*secureauditv1.ClusterRole{{Meta: meta("cluster-admin", "")}, {Meta: meta("view", "")}},
		RoleBindings: []*secureauditv1.RoleBinding{{
			Meta:     meta("viewers", "team-a"),
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"},
			Subjects: []*secureauditv1.Subject{group(groupID), user("alice@contoso.com"), {Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "ci", Namespace: "team-a"}},
		}, {
			Meta:     meta("legacy", "payments"),
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "ops"},
			Subjects: []*secureauditv1.Subject{user("ghost@contoso.com")},
		}},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{
			Meta:     meta("system:discovery", ""),
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "system:discovery"},
			Subjects: []*secureauditv1.Subject{group("system:authenticated"), group("system:unauthenticated")},
		}, {
			Meta:     meta("platform-admins", ""),
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Subjects: []*secureauditv1.Subject{group(groupID), group("system:masters"), user("aks-support"), group("system:nodes"), group("system:authenticated")},
		}},
	}}
}

func directory() []*secureauditv1.DirectoryChunk {
	return []*secureauditv1.DirectoryChunk{{
		Users: []*secureauditv1.DirectoryUser{
			{Id: "00000000-0000-4000-8000-000000000001", UserPrincipalName: "Alice@contoso.com", DisplayName: "Alice", UserType: secureauditv1.UserType_USER_TYPE_MEMBER, AccountEnabled: true},
			{Id: "00000000-0000-4000-8000-000000000002", UserPrincipalName: "bob_x#EXT#@contoso.com", DisplayName: "Bob", UserType: secureauditv1.UserType_USER_TYPE_GUEST, AccountEnabled: false},
			{Id: "00000000-0000-4000-8000-000000000003", UserPrincipalName: "carol@contoso.com", DisplayName: "Carol", UserType: secureauditv1.UserType_USER_TYPE_MEMBER, AccountEnabled: true},
		},
		Groups: []*secureauditv1.DirectoryGroup{{
			Id: groupID, DisplayName: "Platform Admins", Description: "runs the platform",
			MemberIds: []string{"00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-0000000000ff", "00000000-0000-4000-8000-0000000000a0"},
			OwnerIds:  []string{"00000000-0000-4000-8000-000000000001"},
		}, {
			// Nested in Platform Admins, and (a cycle) Platform Admins in it.
			Id: "00000000-0000-4000-8000-0000000000a0", DisplayName: "On-call",
			MemberIds: []string{"00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-0000000000b0", "00000000-0000-4000-8000-000000000001", groupID},
		}},
		ServicePrincipals: []*secureauditv1.DirectoryServicePrincipal{
			{Id: "00000000-0000-4000-8000-0000000000b0", AppId: "00000000-0000-4000-8000-0000000000b1", DisplayName: "deployer"},
		},
	}}
}

func TestSubjects(t *testing.T) {
	viewers := &secureauditv1.AccessGrant{
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "viewers", Namespace: "team-a"},
		Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"},
		Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "team-a"},
	}
	admins := &secureauditv1.AccessGrant{
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "platform-admins"},
		Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
		Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
	}
	legacy := &secureauditv1.AccessGrant{
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "legacy", Namespace: "payments"},
		Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "ops", Namespace: "payments", Missing: true},
		Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "payments"},
	}
	discovery := &secureauditv1.AccessGrant{
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "system:discovery"},
		Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "system:discovery", Missing: true},
		Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
	}
	alice := &secureauditv1.Person{UserPrincipalName: "Alice@contoso.com", DisplayName: "Alice"}
	bob := &secureauditv1.Person{UserPrincipalName: "bob_x#EXT#@contoso.com", DisplayName: "Bob", Guest: true, Disabled: true}
	ref := func(s *secureauditv1.Subject, display string) *secureauditv1.SubjectRef {
		return &secureauditv1.SubjectRef{Kind: s.GetKind(), Name: s.GetName(), DisplayName: display}
	}
	tests := []struct {
		name string
		dir  []*secureauditv1.DirectoryChunk
		want []*secureauditv1.ReviewSubject
	}{
		{"without directory", nil, []*secureauditv1.ReviewSubject{
			{Subject: ref(group(groupID), ""), Grants: []*secureauditv1.AccessGrant{admins, viewers}},
			{Subject: ref(group("system:authenticated"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(group("system:masters"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(group("system:nodes"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(group("system:unauthenticated"), ""), Grants: []*secureauditv1.AccessGrant{discovery}},
			{Subject: ref(user("aks-support"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(user("alice@contoso.com"), ""), Grants: []*secureauditv1.AccessGrant{viewers}},
			{Subject: ref(user("ghost@contoso.com"), ""), Grants: []*secureauditv1.AccessGrant{legacy}},
		}},
		{"with directory", directory(), []*secureauditv1.ReviewSubject{
			{Subject: ref(group(groupID), "Platform Admins"), Grants: []*secureauditv1.AccessGrant{admins, viewers}, Resolved: true,
				Description: "runs the platform", Owners: []*secureauditv1.Person{alice},
				// Every member the binding reaches: direct ones, an ID the
				// directory lacks, then the nested group's (Alice once).
				Members: []*secureauditv1.Person{alice, bob,
					{DisplayName: "00000000-0000-4000-8000-0000000000ff", Unresolved: true},
					{UserPrincipalName: "carol@contoso.com", DisplayName: "Carol", ViaGroup: "On-call"},
					{DisplayName: "deployer", ServicePrincipal: true, ViaGroup: "On-call"},
				}},
			{Subject: ref(group("system:authenticated"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(group("system:masters"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(group("system:nodes"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(group("system:unauthenticated"), ""), Grants: []*secureauditv1.AccessGrant{discovery}},
			{Subject: ref(user("aks-support"), ""), Grants: []*secureauditv1.AccessGrant{admins}},
			{Subject: ref(user("alice@contoso.com"), "Alice"), Grants: []*secureauditv1.AccessGrant{viewers}, Resolved: true, Person: alice},
			{Subject: ref(user("ghost@contoso.com"), ""), Grants: []*secureauditv1.AccessGrant{legacy}},
		}},
	}
	// The risk-agent's decision: only the upstream system:discovery binding
	// of system:authenticated is platform-managed. Names prove nothing: the
	// same group through platform-admins, system:nodes and aks-support
	// there, and system:unauthenticated added to system:discovery, all come
	// up for review.
	managed := []*secureauditv1.ManagedGrant{{
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "system:discovery"},
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "system:authenticated"},
		Source:  "bootstrap",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := Subjects(snapshot.Build(chunks(), tt.dir), tt.dir, managed)
			if truncated {
				t.Error("truncated")
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Subjects (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTruncated: more users and groups than MaxSubjects are cut at
// MaxSubjects, in order, and the cut is reported.
func TestTruncated(t *testing.T) {
	b := &secureauditv1.ClusterRoleBinding{
		Meta:    meta("many", ""),
		RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"},
	}
	for i := range MaxSubjects + 1 {
		b.Subjects = append(b.Subjects, user(fmt.Sprintf("u%05d", i)))
	}
	got, truncated := Subjects(snapshot.Build([]*secureauditv1.SnapshotChunk{{ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{b}}}, nil), nil, nil)
	if !truncated || len(got) != MaxSubjects || got[len(got)-1].GetSubject().GetName() != fmt.Sprintf("u%05d", MaxSubjects-1) {
		t.Errorf("truncated = %v, %d subjects, last %q", truncated, len(got), got[len(got)-1].GetSubject().GetName())
	}
}
