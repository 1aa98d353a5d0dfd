package access_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const (
	userKind  = secureauditv1.SubjectKind_SUBJECT_KIND_USER
	groupKind = secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
	saKind    = secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT
	roleRef   = secureauditv1.RoleKind_ROLE_KIND_ROLE
	crRef     = secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE
	rbKind    = secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING
	crbKind   = secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING
)

func meta(ns, name string, labels map[string]string) *secureauditv1.ObjectMeta {
	return &secureauditv1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}
}

func pr(verbs, groups, resources []string) *secureauditv1.PolicyRule {
	return &secureauditv1.PolicyRule{Verbs: verbs, ApiGroups: groups, Resources: resources}
}

func sub(kind secureauditv1.SubjectKind, ns, name string) *secureauditv1.Subject {
	return &secureauditv1.Subject{Kind: kind, Namespace: ns, Name: name}
}

func l(s ...string) []string { return s }

// fixture is a small cluster exercising every binding and subject kind,
// aggregation from selectors, and a binding to a missing role.
func fixture() *snapshot.Snapshot {
	chunk := &secureauditv1.SnapshotChunk{
		Roles: []*secureauditv1.Role{
			{Meta: meta("team-a", "pod-reader", nil), Rules: []*secureauditv1.PolicyRule{pr(l("get", "list"), l(""), l("pods", "pods/log"))}},
			{Meta: meta("team-a", "one-secret", nil), Rules: []*secureauditv1.PolicyRule{{Verbs: l("get"), ApiGroups: l(""), Resources: l("secrets"), ResourceNames: l("db")}}},
		},
		ClusterRoles: []*secureauditv1.ClusterRole{
			// monitoring has no rules of its own: they come from the roles
			// labelled for aggregation, as in a manifest.
			{Meta: meta("", "monitoring", nil), AggregationSelectors: []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"agg": "monitoring"}}}},
			{Meta: meta("", "monitoring-nodes", map[string]string{"agg": "monitoring"}), Rules: []*secureauditv1.PolicyRule{pr(l("get"), l(""), l("nodes", "nodes/metrics"))}},
			{Meta: meta("", "scaler", nil), Rules: []*secureauditv1.PolicyRule{pr(l("update"), l("apps"), l("*/scale"))}},
			{Meta: meta("", "metrics", nil), Rules: []*secureauditv1.PolicyRule{{Verbs: l("get"), NonResourceUrls: l("/metrics", "/debug/*")}}},
			{Meta: meta("", "discovery", nil), Rules: []*secureauditv1.PolicyRule{{Verbs: l("get"), NonResourceUrls: l("/version")}}},
		},
		RoleBindings: []*secureauditv1.RoleBinding{
			{Meta: meta("team-a", "readers", nil), RoleRef: &secureauditv1.RoleRef{Kind: roleRef, Name: "pod-reader"},
				Subjects: []*secureauditv1.Subject{sub(userKind, "", "alice"), sub(saKind, "", "builder"), sub(groupKind, "", "system:serviceaccounts:team-b")}},
			{Meta: meta("team-a", "db", nil), RoleRef: &secureauditv1.RoleRef{Kind: roleRef, Name: "one-secret"},
				Subjects: []*secureauditv1.Subject{sub(saKind, "team-a", "app")}},
			{Meta: meta("team-a", "scale", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "scaler"},
				Subjects: []*secureauditv1.Subject{sub(userKind, "", "alice")}},
			{Meta: meta("team-a", "ns-metrics", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "metrics"},
				Subjects: []*secureauditv1.Subject{sub(userKind, "", "alice")}},
			{Meta: meta("team-a", "dangling", nil), RoleRef: &secureauditv1.RoleRef{Kind: roleRef, Name: "gone"},
				Subjects: []*secureauditv1.Subject{sub(userKind, "", "alice")}},
		},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{
			{Meta: meta("", "monitoring", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "monitoring"},
				Subjects: []*secureauditv1.Subject{sub(saKind, "observability", "prometheus"), sub(groupKind, "", "sre")}},
			{Meta: meta("", "metrics", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "metrics"},
				Subjects: []*secureauditv1.Subject{sub(saKind, "observability", "prometheus")}},
			{Meta: meta("", "discovery", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "discovery"},
				Subjects: []*secureauditv1.Subject{sub(groupKind, "", "system:authenticated")}},
		},
	}
	return snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil)
}

func TestAllowed(t *testing.T) {
	e := access.New(fixture())
	alice := access.ForUser("alice")
	prom := access.ForServiceAccount("observability", "prometheus")
	rb := func(name, kind, role string) access.Binding {
		k := roleRef
		if kind == "ClusterRole" {
			k = crRef
		}
		return access.Binding{Kind: rbKind, Namespace: "team-a", Name: name, RoleKind: k, Role: role}
	}
	crb := func(name string) access.Binding {
		return access.Binding{Kind: crbKind, Name: name, RoleKind: crRef, Role: name}
	}
	ns := func(a access.Attributes, ns string) access.Attributes { a.Namespace = ns; return a }
	tests := []struct {
		name string
		id   access.Identity
		req  access.Attributes
		want access.Decision
	}{
		{"role binding in its namespace", alice, ns(res("list", "", "pods", "", ""), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{rb("readers", "Role", "pod-reader")}}},
		{"role binding in another namespace", alice, ns(res("list", "", "pods", "", ""), "team-b"), access.Decision{}},
		{"role binding for all namespaces", alice, res("list", "", "pods", "", ""), access.Decision{}},
		{"subresource granted", alice, ns(res("get", "", "pods", "log", "p"), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{rb("readers", "Role", "pod-reader")}}},
		{"subresource not granted", alice, ns(res("create", "", "pods", "exec", "p"), "team-a"), access.Decision{}},
		{"cluster role through a role binding", alice, ns(res("update", "apps", "deployments", "scale", "d"), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{rb("scale", "ClusterRole", "scaler")}}},
		{"non-resource URL through a role binding never", alice, url("get", "/metrics"), access.Decision{}},
		{"ServiceAccount subject defaults to the binding's namespace", access.ForServiceAccount("team-a", "builder"), ns(res("get", "", "pods", "", "p"), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{rb("readers", "Role", "pod-reader")}}},
		{"ServiceAccount group", access.ForServiceAccount("team-b", "x"), ns(res("get", "", "pods", "", "p"), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{rb("readers", "Role", "pod-reader")}}},
		{"resource name granted", access.ForServiceAccount("team-a", "app"), ns(res("get", "", "secrets", "", "db"), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{rb("db", "Role", "one-secret")}}},
		{"other resource name", access.ForServiceAccount("team-a", "app"), ns(res("get", "", "secrets", "", "other"), "team-a"), access.Decision{}},
		{"list restricted by names", access.ForServiceAccount("team-a", "app"), ns(res("list", "", "secrets", "", ""), "team-a"), access.Decision{}},
		{"aggregated rules", prom, res("get", "", "nodes", "metrics", "n1"),
			access.Decision{Allowed: true, Bindings: []access.Binding{crb("monitoring")}}},
		{"aggregated rules through a group", access.ForUser("bob", "sre"), ns(res("get", "", "nodes", "", "n1"), "team-a"),
			access.Decision{Allowed: true, Bindings: []access.Binding{crb("monitoring")}}},
		{"non-resource URL prefix", prom, url("get", "/debug/pprof"),
			access.Decision{Allowed: true, Bindings: []access.Binding{crb("metrics")}}},
		{"authenticated users", alice, url("get", "/version"),
			access.Decision{Allowed: true, Bindings: []access.Binding{crb("discovery")}}},
		{"a bare group is not authenticated", access.ForGroup("sre"), url("get", "/version"), access.Decision{}},
		{"anonymous is not authenticated", access.ForUser(access.UserAnonymous), url("get", "/version"), access.Decision{}},
		{"user named like a ServiceAccount", access.Identity{Name: "system:serviceaccount:observability:prometheus"}, url("get", "/metrics"),
			access.Decision{Allowed: true, Bindings: []access.Binding{crb("metrics")}}},
		{"system:masters", access.ForUser("root", access.GroupMasters), res("delete", "", "nodes", "", "n1"),
			access.Decision{Allowed: true, Privileged: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.Allowed(tt.id, tt.req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Allowed(%+v, %+v) mismatch (-want +got):\n%s", tt.id, tt.req, diff)
			}
		})
	}
}

func TestForUser(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		groups []string
		want   access.Identity
	}{
		{"user", "alice", l("dev"), access.Identity{Name: "alice", Groups: l("dev", "system:authenticated")}},
		{"anonymous", "system:anonymous", nil, access.Identity{Name: "system:anonymous", Groups: l("system:unauthenticated")}},
		{"service account", "system:serviceaccount:ns:sa", nil, access.Identity{
			Name: "system:serviceaccount:ns:sa", Groups: l("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")}},
		// --as-group replaces a ServiceAccount's groups, as the API server's impersonation does.
		{"service account with groups", "system:serviceaccount:ns:sa", l("x"), access.Identity{
			Name: "system:serviceaccount:ns:sa", Groups: l("x", "system:authenticated")}},
		{"three parts is a user", "system:serviceaccount:a:b:c", nil, access.Identity{
			Name: "system:serviceaccount:a:b:c", Groups: l("system:authenticated")}},
		{"uppercase namespace is a user", "system:serviceaccount:NS:sa", nil, access.Identity{
			Name: "system:serviceaccount:NS:sa", Groups: l("system:authenticated")}},
		{"dotted name is a service account", "system:serviceaccount:ns:a.b", nil, access.Identity{
			Name: "system:serviceaccount:ns:a.b", Groups: l("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")}},
		{"dotted namespace is a user", "system:serviceaccount:n.s:a", nil, access.Identity{
			Name: "system:serviceaccount:n.s:a", Groups: l("system:authenticated")}},
		{"unauthenticated group given", "bob", l("system:unauthenticated"), access.Identity{Name: "bob", Groups: l("system:unauthenticated")}},
		{"authenticated group given", "bob", l("system:authenticated", "g"), access.Identity{Name: "bob", Groups: l("system:authenticated", "g")}},
		{"anonymous with groups", "system:anonymous", l("g"), access.Identity{Name: "system:anonymous", Groups: l("g", "system:unauthenticated")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, access.ForUser(tt.user, tt.groups...)); diff != "" {
				t.Errorf("ForUser mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	e := access.New(fixture())
	crb := func(name string) access.Binding {
		return access.Binding{Kind: crbKind, Name: name, RoleKind: crRef, Role: name}
	}
	want := []access.Grant{
		{Permission: access.Permission{Verb: "get", Resource: "nodes"}, Bindings: []access.Binding{crb("monitoring")}},
		{Permission: access.Permission{Verb: "get", Resource: "nodes", Subresource: "metrics"}, Bindings: []access.Binding{crb("monitoring")}},
		{Permission: access.Permission{Verb: "get", NonResourceURL: "/debug/*"}, Bindings: []access.Binding{crb("metrics")}},
		{Permission: access.Permission{Verb: "get", NonResourceURL: "/metrics"}, Bindings: []access.Binding{crb("metrics")}},
		{Permission: access.Permission{Verb: "get", NonResourceURL: "/version"}, Bindings: []access.Binding{crb("discovery")}},
	}
	got := e.Permissions(access.ForServiceAccount("observability", "prometheus"))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Permissions mismatch (-want +got):\n%s", diff)
	}

	// alice: a RoleBinding's non-resource rules grant nothing; a dangling
	// binding grants nothing.
	rb := func(name string, kind secureauditv1.RoleKind, role string) access.Binding {
		return access.Binding{Kind: rbKind, Namespace: "team-a", Name: name, RoleKind: kind, Role: role}
	}
	readers := []access.Binding{rb("readers", roleRef, "pod-reader")}
	want = []access.Grant{
		{Permission: access.Permission{Verb: "get", NonResourceURL: "/version"}, Bindings: []access.Binding{crb("discovery")}},
		{Permission: access.Permission{Verb: "get", Resource: "pods", Namespace: "team-a"}, Bindings: readers},
		{Permission: access.Permission{Verb: "list", Resource: "pods", Namespace: "team-a"}, Bindings: readers},
		{Permission: access.Permission{Verb: "get", Resource: "pods", Subresource: "log", Namespace: "team-a"}, Bindings: readers},
		{Permission: access.Permission{Verb: "list", Resource: "pods", Subresource: "log", Namespace: "team-a"}, Bindings: readers},
		{Permission: access.Permission{Verb: "update", APIGroup: "apps", Resource: "*", Subresource: "scale", Namespace: "team-a"}, Bindings: []access.Binding{rb("scale", crRef, "scaler")}},
	}
	if diff := cmp.Diff(want, e.Permissions(access.ForUser("alice"))); diff != "" {
		t.Errorf("Permissions(alice) mismatch (-want +got):\n%s", diff)
	}
}

func TestWhoCan(t *testing.T) {
	e := access.New(fixture())
	tests := []struct {
		name string
		req  access.Attributes
		want []access.Match
	}{
		{"pods in team-a", mustRequest("get", "pods", "team-a", ""), []access.Match{
			{Subject: sub(userKind, "", "alice"), Binding: access.Binding{Kind: rbKind, Namespace: "team-a", Name: "readers", RoleKind: roleRef, Role: "pod-reader"}},
			{Subject: sub(groupKind, "", "system:serviceaccounts:team-b"), Binding: access.Binding{Kind: rbKind, Namespace: "team-a", Name: "readers", RoleKind: roleRef, Role: "pod-reader"}},
			{Subject: sub(saKind, "team-a", "builder"), Binding: access.Binding{Kind: rbKind, Namespace: "team-a", Name: "readers", RoleKind: roleRef, Role: "pod-reader"}},
		}},
		{"pods elsewhere", mustRequest("get", "pods", "team-b", ""), nil},
		{"aggregated", mustRequest("get", "nodes", "", ""), []access.Match{
			{Subject: sub(groupKind, "", "sre"), Binding: access.Binding{Kind: crbKind, Name: "monitoring", RoleKind: crRef, Role: "monitoring"}},
			{Subject: sub(saKind, "observability", "prometheus"), Binding: access.Binding{Kind: crbKind, Name: "monitoring", RoleKind: crRef, Role: "monitoring"}},
		}},
		{"non-resource", mustRequest("get", "/debug/vars", "", ""), []access.Match{
			{Subject: sub(saKind, "observability", "prometheus"), Binding: access.Binding{Kind: crbKind, Name: "metrics", RoleKind: crRef, Role: "metrics"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.WhoCan(tt.req), protocmp.Transform()); diff != "" {
				t.Errorf("WhoCan mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAggregationChain checks the bootstrap pattern from manifests, where no
// controller filled the rules in: admin aggregates edit (itself aggregated)
// and edit aggregates view, through the aggregate-to-* labels.
func TestAggregationChain(t *testing.T) {
	sel := func(to string) []*secureauditv1.LabelSelector {
		return []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + to: "true"}}}
	}
	label := func(to ...string) map[string]string {
		m := map[string]string{}
		for _, x := range to {
			m["rbac.authorization.k8s.io/aggregate-to-"+x] = "true"
		}
		return m
	}
	chunk := &secureauditv1.SnapshotChunk{
		ClusterRoles: []*secureauditv1.ClusterRole{
			{Meta: meta("", "admin", nil), AggregationSelectors: sel("admin")},
			{Meta: meta("", "edit", label("admin")), AggregationSelectors: sel("edit")},
			{Meta: meta("", "view", label("edit")), AggregationSelectors: sel("view")},
			{Meta: meta("", "system:aggregate-to-admin", label("admin")), Rules: []*secureauditv1.PolicyRule{pr(l("create"), l("rbac.authorization.k8s.io"), l("rolebindings"))}},
			{Meta: meta("", "system:aggregate-to-edit", label("edit")), Rules: []*secureauditv1.PolicyRule{pr(l("create"), l(""), l("secrets"))}},
			{Meta: meta("", "system:aggregate-to-view", label("view")), Rules: []*secureauditv1.PolicyRule{pr(l("get"), l(""), l("pods"))}},
			{Meta: meta("", "crd-viewer", label("view")), Rules: []*secureauditv1.PolicyRule{pr(l("get"), l("example.com"), l("widgets"))}},
		},
		RoleBindings: []*secureauditv1.RoleBinding{
			{Meta: meta("team-a", "admins", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "admin"}, Subjects: []*secureauditv1.Subject{sub(userKind, "", "ann")}},
			{Meta: meta("team-a", "editors", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "edit"}, Subjects: []*secureauditv1.Subject{sub(userKind, "", "ed")}},
			{Meta: meta("team-a", "viewers", nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: "view"}, Subjects: []*secureauditv1.Subject{sub(userKind, "", "vi")}},
		},
	}
	e := access.New(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil))
	in := func(a access.Attributes) access.Attributes { a.Namespace = "team-a"; return a }
	requests := []access.Attributes{
		in(res("create", "rbac.authorization.k8s.io", "rolebindings", "", "")),
		in(res("create", "", "secrets", "", "")),
		in(res("get", "", "pods", "", "p")),
		in(res("get", "example.com", "widgets", "", "w")),
	}
	want := map[string][]bool{
		"ann": {true, true, true, true},
		"ed":  {false, true, true, true},
		"vi":  {false, false, true, true},
	}
	for user, w := range want {
		for i, a := range requests {
			if got := e.Allowed(access.ForUser(user), a).Allowed; got != w[i] {
				t.Errorf("%s %s %s.%s: allowed=%v, want %v", user, a.Verb, a.Resource, a.APIGroup, got, w[i])
			}
		}
	}
}
