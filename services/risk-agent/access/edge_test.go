package access_test

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// TestEdgeObjects judges objects the API server accepts at the edges of its
// validation, after a round trip through the wire format and the contract's
// protovalidate rules (the path a snapshot takes from the rbac-agent): each
// passes the contract and the engine decides as the authorizer does
// (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac with
// pkg/apis/rbac/v1/evaluation_helpers.go).
func TestEdgeObjects(t *testing.T) {
	long := "role-" + strings.Repeat("x", 295)
	nsLong := "Team." + strings.Repeat("n", 295)
	annotations := map[string]string{"example.com/blob": strings.Repeat("a", 70<<10)}
	for i := range 300 {
		annotations[fmt.Sprintf("example.com/a%d", i)] = "v"
	}
	many := make([]string, 71)
	for i := range many {
		many[i] = fmt.Sprintf("verb%d", i)
	}
	many[70] = "deletecollection"
	crb := func(name, role string, subjects ...*secureauditv1.Subject) *secureauditv1.ClusterRoleBinding {
		return &secureauditv1.ClusterRoleBinding{Meta: meta("", name, nil), RoleRef: &secureauditv1.RoleRef{Kind: crRef, Name: role}, Subjects: subjects}
	}
	chunk := &secureauditv1.SnapshotChunk{
		ClusterRoles: []*secureauditv1.ClusterRole{
			{Meta: meta("", "empty-verb", nil), Rules: []*secureauditv1.PolicyRule{pr(l(""), l(""), l("pods"))}},
			{Meta: meta("", "empty-name", nil), Rules: []*secureauditv1.PolicyRule{{Verbs: l("get", "list", "create"), ApiGroups: l(""), Resources: l("pods"), ResourceNames: l("")}}},
			{Meta: meta("", "empty-resource", nil), Rules: []*secureauditv1.PolicyRule{pr(l("get"), l(""), l(""))}},
			{Meta: meta("", "empty-url", nil), Rules: []*secureauditv1.PolicyRule{{Verbs: l("get"), NonResourceUrls: l("")}}},
			{Meta: &secureauditv1.ObjectMeta{Name: "annotated", Annotations: annotations}, Rules: []*secureauditv1.PolicyRule{pr(l("get"), l(""), l("configmaps"))}},
			{Meta: meta("", long, nil), Rules: []*secureauditv1.PolicyRule{pr(l("get"), l(""), l("secrets"))}},
			{Meta: meta("", "many-verbs", nil), Rules: []*secureauditv1.PolicyRule{pr(many, l(""), l("events"))}},
		},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{
			crb("empty-verb", "empty-verb", sub(userKind, "", "ev")),
			crb("empty-name", "empty-name", sub(userKind, "", "en")),
			crb("empty-resource", "empty-resource", sub(userKind, "", "er")),
			crb("empty-url", "empty-url", sub(userKind, "", "eu")),
			crb("annotated", "annotated", sub(saKind, "Team.Alpha", "bot")),
			crb(long, long, sub(saKind, nsLong, "bot")),
			crb("many-verbs", "many-verbs", sub(groupKind, "", "many")),
		},
	}
	v, err := validation.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := proto.Marshal(chunk)
	if err != nil {
		t.Fatal(err)
	}
	back := &secureauditv1.SnapshotChunk{}
	if err := proto.Unmarshal(wire, back); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(back); err != nil {
		t.Fatalf("the contract refuses objects the API server accepts: %v", err)
	}
	e := access.New(snapshot.Build([]*secureauditv1.SnapshotChunk{back}, nil))
	tests := []struct {
		name string
		id   access.Identity
		a    access.Attributes
		want bool
	}{
		{"an empty verb grants no real verb", access.ForUser("ev"), mustRequest("get", "pods", "", ""), false},
		{"an empty verb grants no list", access.ForUser("ev"), mustRequest("list", "pods", "default", ""), false},
		{"resourceNames [\"\"] allows list (no name)", access.ForUser("en"), mustRequest("list", "pods", "default", ""), true},
		{"resourceNames [\"\"] allows create (no name)", access.ForUser("en"), mustRequest("create", "pods", "default", ""), true},
		{"resourceNames [\"\"] allows no named get", access.ForUser("en"), mustRequest("get", "pods", "default", "web"), false},
		{"an empty resource matches no resource", access.ForUser("er"), mustRequest("get", "pods", "", ""), false},
		{"an empty non-resource URL matches no path", access.ForUser("eu"), mustRequest("get", "/healthz", "", ""), false},
		{"an empty non-resource URL matches no path, not even /", access.ForUser("eu"), mustRequest("get", "/", "", ""), false},
		{"a ServiceAccount in an uppercase, dotted namespace", access.ForServiceAccount("Team.Alpha", "bot"), mustRequest("get", "configmaps", "x", ""), true},
		{"the same name in the lowercase namespace is someone else", access.ForServiceAccount("team.alpha", "bot"), mustRequest("get", "configmaps", "x", ""), false},
		{"a ServiceAccount in a 300-character namespace, through a 300-character role", access.ForServiceAccount(nsLong, "bot"), mustRequest("get", "secrets", "x", ""), true},
		{"the 71st verb of a rule", access.ForGroup("many"), mustRequest("deletecollection", "events", "x", ""), true},
		{"a verb the 71 do not hold", access.ForGroup("many"), mustRequest("delete", "events", "x", "e"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.Allowed(tt.id, tt.a).Allowed; got != tt.want {
				t.Errorf("Allowed(%v, %+v) = %v, want %v", tt.id, tt.a, got, tt.want)
			}
		})
	}
	// who-can answers the same: list pods through resourceNames [""].
	var who []string
	for _, m := range e.WhoCan(mustRequest("list", "pods", "default", "")) {
		who = append(who, m.Subject.GetName())
	}
	if want := []string{"en"}; !slices.Equal(who, want) {
		t.Errorf("WhoCan(list pods) = %v, want %v", who, want)
	}
	who = nil
	for _, m := range e.WhoCan(mustRequest("get", "pods", "default", "web")) {
		who = append(who, m.Subject.GetName())
	}
	if len(who) != 0 {
		t.Errorf("WhoCan(get pods web) = %v, want nobody", who)
	}
}
