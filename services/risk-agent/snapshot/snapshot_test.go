package snapshot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

func rule(verb, resource string) *secureauditv1.PolicyRule {
	return &secureauditv1.PolicyRule{Verbs: []string{verb}, ApiGroups: []string{""}, Resources: []string{resource}}
}

func clusterRole(name string, labels map[string]string, sel []*secureauditv1.LabelSelector, rules ...*secureauditv1.PolicyRule) *secureauditv1.ClusterRole {
	return &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: name, Labels: labels}, Rules: rules, AggregationSelectors: sel}
}

func expr(key, op string, values ...string) *secureauditv1.LabelSelector {
	return &secureauditv1.LabelSelector{MatchExpressions: []*secureauditv1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"tier": "a", "team": "x"}
	tests := []struct {
		name string
		sel  *secureauditv1.LabelSelector
		want bool
	}{
		{"empty selects everything", &secureauditv1.LabelSelector{}, true},
		{"matchLabels hit", &secureauditv1.LabelSelector{MatchLabels: map[string]string{"tier": "a"}}, true},
		{"matchLabels wrong value", &secureauditv1.LabelSelector{MatchLabels: map[string]string{"tier": "b"}}, false},
		{"matchLabels missing key", &secureauditv1.LabelSelector{MatchLabels: map[string]string{"zone": "a"}}, false},
		{"In hit", expr("tier", "In", "b", "a"), true},
		{"In miss", expr("tier", "In", "b"), false},
		{"In absent key", expr("zone", "In", "a"), false},
		{"NotIn hit", expr("tier", "NotIn", "b"), true},
		{"NotIn miss", expr("tier", "NotIn", "a"), false},
		{"NotIn absent key", expr("zone", "NotIn", "a"), true},
		{"Exists", expr("team", "Exists"), true},
		{"Exists absent", expr("zone", "Exists"), false},
		{"DoesNotExist", expr("zone", "DoesNotExist"), true},
		{"DoesNotExist present", expr("team", "DoesNotExist"), false},
		{"unknown operator", expr("team", "Gt", "1"), false},
		{"labels and expressions both needed", &secureauditv1.LabelSelector{
			MatchLabels:      map[string]string{"tier": "a"},
			MatchExpressions: []*secureauditv1.LabelSelectorRequirement{{Key: "team", Operator: "In", Values: []string{"y"}}},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := snapshot.Matches(tt.sel, labels); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAggregation(t *testing.T) {
	sel := func(k string) []*secureauditv1.LabelSelector {
		return []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{k: "true"}}}
	}
	tests := []struct {
		name  string
		roles []*secureauditv1.ClusterRole
		role  string
		want  []*secureauditv1.PolicyRule
	}{
		{
			name: "own rules then selected roles by name",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, sel("to-agg"), rule("get", "own")),
				clusterRole("b", map[string]string{"to-agg": "true"}, nil, rule("get", "b")),
				clusterRole("a", map[string]string{"to-agg": "true"}, nil, rule("get", "a")),
				clusterRole("other", map[string]string{"to-agg": "false"}, nil, rule("get", "other")),
			},
			role: "agg",
			want: []*secureauditv1.PolicyRule{rule("get", "own"), rule("get", "a"), rule("get", "b")},
		},
		{
			name: "transitive to a fixed point (admin aggregates edit aggregates view)",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("admin", nil, sel("to-admin")),
				clusterRole("edit", map[string]string{"to-admin": "true"}, sel("to-edit"), rule("update", "pods")),
				clusterRole("view", map[string]string{"to-edit": "true"}, nil, rule("get", "pods")),
			},
			role: "admin",
			want: []*secureauditv1.PolicyRule{rule("update", "pods"), rule("get", "pods")},
		},
		{
			name: "cycle terminates and duplicates are dropped",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("x", map[string]string{"to-y": "true"}, sel("to-x"), rule("get", "x"), rule("get", "shared")),
				clusterRole("y", map[string]string{"to-x": "true"}, sel("to-y"), rule("get", "shared"), rule("get", "y")),
			},
			role: "x",
			want: []*secureauditv1.PolicyRule{rule("get", "x"), rule("get", "shared"), rule("get", "y")},
		},
		{
			name: "matchExpressions select; a role does not select itself",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", map[string]string{"tier": "a"}, []*secureauditv1.LabelSelector{expr("tier", "In", "a")}, rule("get", "own")),
				clusterRole("piece", map[string]string{"tier": "a"}, nil, rule("get", "piece")),
				clusterRole("no", map[string]string{"tier": "b"}, nil, rule("get", "no")),
			},
			role: "agg",
			want: []*secureauditv1.PolicyRule{rule("get", "own"), rule("get", "piece")},
		},
		{
			name: "a role without selectors keeps its own rules",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("plain", map[string]string{"to-agg": "true"}, nil, rule("get", "plain")),
				clusterRole("agg", nil, sel("to-agg")),
			},
			role: "plain",
			want: []*secureauditv1.PolicyRule{rule("get", "plain")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range [][]*secureauditv1.ClusterRole{tt.roles, reversed(tt.roles)} {
				s := snapshot.Build([]*secureauditv1.SnapshotChunk{{ClusterRoles: order}}, nil)
				got, ok := s.EffectiveClusterRoleRules(tt.role)
				if !ok {
					t.Fatalf("role %s not found", tt.role)
				}
				if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
					t.Errorf("effective rules (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func TestIndexes(t *testing.T) {
	s := snapshot.Build(
		[]*secureauditv1.SnapshotChunk{{
			Roles: []*secureauditv1.Role{{Meta: &secureauditv1.ObjectMeta{Name: "r", Namespace: "b"}}, {Meta: &secureauditv1.ObjectMeta{Name: "r", Namespace: "a"}}},
			RoleBindings: []*secureauditv1.RoleBinding{
				{Meta: &secureauditv1.ObjectMeta{Name: "z", Namespace: "a"}},
				{Meta: &secureauditv1.ObjectMeta{Name: "y", Namespace: "a"}},
			},
		}},
		[]*secureauditv1.DirectoryChunk{{
			Users:  []*secureauditv1.DirectoryUser{{Id: "22222222-2222-4222-8222-222222222222", UserPrincipalName: "Ann@Example.com", DisplayName: "Ann"}},
			Groups: []*secureauditv1.DirectoryGroup{{Id: "11111111-1111-4111-8111-111111111111", DisplayName: "Ops"}},
		}},
	)
	if _, ok := s.Role("a", "r"); !ok {
		t.Error("Role a/r not found")
	}
	if _, ok := s.Role("c", "r"); ok {
		t.Error("Role c/r found")
	}
	if got := s.RoleBindings()[0].GetMeta().GetName(); got != "y" {
		t.Errorf("first RoleBinding = %s, want y (sorted)", got)
	}
	if u, ok := s.UserByUPN("ann@EXAMPLE.com"); !ok || u.GetDisplayName() != "Ann" {
		t.Errorf("UserByUPN: %v %v", u, ok)
	}
	if _, ok := s.UserByID("22222222-2222-4222-8222-222222222222"); !ok {
		t.Error("UserByID not found")
	}
	if g, ok := s.GroupByID("11111111-1111-4111-8111-111111111111"); !ok || g.GetDisplayName() != "Ops" {
		t.Errorf("GroupByID: %v %v", g, ok)
	}
	if !s.HasDirectory() {
		t.Error("HasDirectory = false")
	}
}

func TestAssembler(t *testing.T) {
	header := &secureauditv1.SnapshotHeader{Cluster: "c"}
	ns := []*secureauditv1.Namespace{{Meta: &secureauditv1.ObjectMeta{Name: "a"}}}
	trailer := func(n uint32) *secureauditv1.SnapshotTrailer {
		return &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{Namespaces: n}}
	}
	tests := []struct {
		name    string
		chunks  []*secureauditv1.SnapshotChunk
		wantErr string // "" for success
	}{
		{"complete", []*secureauditv1.SnapshotChunk{{Header: header, Namespaces: ns}, {Namespaces: ns, Trailer: trailer(2)}}, ""},
		{"single chunk", []*secureauditv1.SnapshotChunk{{Header: header, Namespaces: ns, Trailer: trailer(1)}}, ""},
		{"no chunks", nil, "snapshot incomplete: no snapshot chunks"},
		{"no header", []*secureauditv1.SnapshotChunk{{Namespaces: ns}}, "first snapshot chunk must carry the header"},
		{"second header", []*secureauditv1.SnapshotChunk{{Header: header}, {Header: header}}, "second header"},
		{"no trailer", []*secureauditv1.SnapshotChunk{{Header: header, Namespaces: ns}}, "snapshot incomplete: no trailer"},
		{"count mismatch", []*secureauditv1.SnapshotChunk{{Header: header, Namespaces: ns, Trailer: trailer(3)}}, "snapshot incomplete: trailer counts 3 namespaces, 1 arrived"},
		{"chunk after trailer", []*secureauditv1.SnapshotChunk{{Header: header, Trailer: trailer(0)}, {Namespaces: ns}}, "after the trailer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := snapshot.NewAssembler()
			var err error
			for _, c := range tt.chunks {
				if err = a.AddSnapshot(c); err != nil {
					break
				}
			}
			if err == nil {
				_, err = a.Snapshot()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, snapshot.ErrInput) {
				t.Fatalf("error = %v, want ErrInput containing %q", err, tt.wantErr)
			}
		})
	}
}
