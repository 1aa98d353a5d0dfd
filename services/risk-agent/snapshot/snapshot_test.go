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
	sel := func(keys ...string) []*secureauditv1.LabelSelector {
		var out []*secureauditv1.LabelSelector
		for _, k := range keys {
			out = append(out, &secureauditv1.LabelSelector{MatchLabels: map[string]string{k: "true"}})
		}
		return out
	}
	label := func(keys ...string) map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			m[k] = "true"
		}
		return m
	}
	r := rule
	tests := []struct {
		name  string
		roles []*secureauditv1.ClusterRole
		// want maps role names to their rules after aggregation.
		want map[string][]*secureauditv1.PolicyRule
	}{
		{
			name: "selected roles replace the role's own rules, by name, duplicates dropped",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, sel("to-agg"), r("get", "secrets")),
				clusterRole("b", label("to-agg"), nil, r("get", "b"), r("get", "shared")),
				clusterRole("a", label("to-agg"), nil, r("get", "shared"), r("get", "a")),
				clusterRole("other", map[string]string{"to-agg": "false"}, nil, r("get", "other")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"agg": {r("get", "shared"), r("get", "a"), r("get", "b")},
				"a":   {r("get", "shared"), r("get", "a")},
			},
		},
		{
			name: "issue 18: base (team a, get configmaps) and agg with its own get secrets",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("base", map[string]string{"team": "a"}, nil, r("get", "configmaps")),
				clusterRole("agg", nil, []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"team": "a"}}}, r("get", "secrets")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"agg": {r("get", "configmaps")}},
		},
		{
			name: "a selector matching nothing keeps the role's own rules",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, sel("to-agg"), r("get", "own")),
				clusterRole("x", label("elsewhere"), nil, r("get", "x")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"agg": {r("get", "own")}},
		},
		{
			name: "selected roles without rules keep the role's own rules",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, sel("to-agg"), r("get", "own")),
				clusterRole("empty", label("to-agg"), nil),
			},
			want: map[string][]*secureauditv1.PolicyRule{"agg": {r("get", "own")}},
		},
		{
			name: "an aggregated role without rules selecting nothing has none",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, sel("to-agg")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"agg": nil},
		},
		{
			name: "a role selecting only itself keeps its own rules",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("self", label("to-self"), sel("to-self"), r("get", "own")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"self": {r("get", "own")}},
		},
		{
			name: "a role selecting itself and another gets the other's rules only",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("self", label("to-self"), sel("to-self"), r("get", "own")),
				clusterRole("piece", label("to-self"), nil, r("get", "piece")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"self": {r("get", "piece")}},
		},
		{
			name: "nested: admin aggregates edit (own rule dropped) aggregates view",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("admin", nil, sel("to-admin")),
				clusterRole("edit", label("to-admin"), sel("to-edit"), r("update", "pods")),
				clusterRole("view", label("to-edit"), nil, r("get", "pods")),
				clusterRole("admin-only", label("to-admin"), nil, r("delete", "pods")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"admin": {r("delete", "pods"), r("get", "pods")},
				"edit":  {r("get", "pods")},
			},
		},
		{
			name: "nested, outer synced first: a later pass reads the inner role's new rules",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("a-outer", nil, sel("to-outer"), r("get", "outer")),
				clusterRole("z-inner", label("to-outer"), sel("to-inner"), r("get", "inner-own")),
				clusterRole("leaf", label("to-inner"), nil, r("get", "leaf")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"a-outer": {r("get", "leaf")},
				"z-inner": {r("get", "leaf")},
			},
		},
		{
			name: "nested three deep",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("a", nil, sel("to-a"), r("get", "a")),
				clusterRole("b", label("to-a"), sel("to-b"), r("get", "b")),
				clusterRole("c", label("to-b"), sel("to-c"), r("get", "c")),
				clusterRole("d", label("to-c"), nil, r("get", "d")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"a": {r("get", "d")}, "b": {r("get", "d")}, "c": {r("get", "d")}, "d": {r("get", "d")},
			},
		},
		{
			name: "selectors in order, then names; a role matched twice adds nothing more",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, sel("second", "first"), r("get", "own")),
				clusterRole("a", label("first"), nil, r("get", "a")),
				clusterRole("z", label("second", "first"), nil, r("get", "z")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"agg": {r("get", "z"), r("get", "a")}},
		},
		{
			name: "matchExpressions: In, NotIn, Exists, DoesNotExist",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("in", nil, []*secureauditv1.LabelSelector{expr("tier", "In", "a", "b")}),
				clusterRole("notin", nil, []*secureauditv1.LabelSelector{{MatchExpressions: []*secureauditv1.LabelSelectorRequirement{
					{Key: "tier", Operator: "Exists"}, {Key: "tier", Operator: "NotIn", Values: []string{"a"}},
				}}}),
				clusterRole("exists", nil, []*secureauditv1.LabelSelector{expr("team", "Exists")}),
				clusterRole("dne", nil, []*secureauditv1.LabelSelector{{
					MatchLabels:      map[string]string{"tier": "b"},
					MatchExpressions: []*secureauditv1.LabelSelectorRequirement{{Key: "team", Operator: "DoesNotExist"}},
				}}),
				clusterRole("p-a", map[string]string{"tier": "a", "team": "x"}, nil, r("get", "a")),
				clusterRole("p-b", map[string]string{"tier": "b"}, nil, r("get", "b")),
				clusterRole("p-c", map[string]string{"tier": "c"}, nil, r("get", "c")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"in":     {r("get", "a"), r("get", "b")},
				"notin":  {r("get", "b"), r("get", "c")},
				"exists": {r("get", "a")},
				"dne":    {r("get", "b")},
			},
		},
		{
			name: "an empty selector selects every other ClusterRole",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("all", nil, []*secureauditv1.LabelSelector{{}}, r("get", "own")),
				clusterRole("x", nil, nil, r("get", "x")),
				clusterRole("y", label("any"), nil, r("get", "y")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"all": {r("get", "x"), r("get", "y")}},
		},
		{
			name: "an invalid selector (In without values) fails the sync: own rules kept",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("agg", nil, append(sel("to-agg"), expr("tier", "In")), r("get", "own")),
				clusterRole("piece", label("to-agg"), nil, r("get", "piece")),
			},
			want: map[string][]*secureauditv1.PolicyRule{"agg": {r("get", "own")}},
		},
		{
			name: "a live dump, already filled by the controller, is left as it is",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("admin", nil, sel("to-admin"), r("delete", "pods"), r("get", "pods")),
				clusterRole("edit", label("to-admin"), sel("to-edit"), r("get", "pods")),
				clusterRole("view", label("to-edit"), nil, r("get", "pods")),
				clusterRole("admin-only", label("to-admin"), nil, r("delete", "pods")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"admin": {r("delete", "pods"), r("get", "pods")},
				"edit":  {r("get", "pods")},
			},
		},
		{
			// Order-dependent upstream: the member synced first takes the
			// other's own rules, which then circulate. Name order: x first.
			name: "a cycle of two aggregated roles with rules of their own: name order decides",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("x", label("to-y"), sel("to-x"), r("get", "x"), r("get", "shared")),
				clusterRole("y", label("to-x"), sel("to-y"), r("get", "shared"), r("get", "y")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"x": {r("get", "shared"), r("get", "y")},
				"y": {r("get", "shared"), r("get", "y")},
			},
		},
		{
			name: "a cycle with a leaf: the leaf and the own rules read before the first sync circulate",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("x", label("to-y"), sel("to-x"), r("get", "x")),
				clusterRole("y", label("to-x"), sel("to-y"), r("get", "y")),
				clusterRole("leaf", label("to-y"), nil, r("get", "leaf")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"x": {r("get", "leaf"), r("get", "y")},
				"y": {r("get", "leaf"), r("get", "y")},
			},
		},
		{
			// x takes y, y takes z, z takes x's new rules: the passes
			// alternate between two states forever, as the controller
			// would; each role gets the union over the loop.
			name: "a cycle of three that never settles gets the union over the loop",
			roles: []*secureauditv1.ClusterRole{
				clusterRole("x", label("to-z"), sel("to-x"), r("get", "x")),
				clusterRole("y", label("to-x"), sel("to-y"), r("get", "y")),
				clusterRole("z", label("to-y"), sel("to-z"), r("get", "z")),
			},
			want: map[string][]*secureauditv1.PolicyRule{
				"x": {r("get", "y"), r("get", "z")},
				"y": {r("get", "z"), r("get", "y")},
				"z": {r("get", "y"), r("get", "z")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range [][]*secureauditv1.ClusterRole{tt.roles, reversed(tt.roles)} {
				s := snapshot.Build([]*secureauditv1.SnapshotChunk{{ClusterRoles: order}}, nil)
				for role, want := range tt.want {
					got, ok := s.EffectiveClusterRoleRules(role)
					if !ok {
						t.Fatalf("role %s not found", role)
					}
					if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
						t.Errorf("%s: effective rules (-want +got):\n%s", role, diff)
					}
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
