package kube_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/test/kube"
)

// TestEdgeObjects creates on a real API server (on a server of its own, so
// that the differential test's cluster stays as it generates it) the RBAC
// objects at the edges of what the API server accepts: empty strings in
// verbs, resources, resourceNames and nonResourceURLs, ServiceAccount
// subjects in uppercase, dotted and 300-character namespaces, a 70 KiB
// annotation beside 300 others, a 300-character role name, a rule with 71
// verbs, a User subject with a namespace, and a rule with 5,000 verbs (valid,
// past the snapshot's memory limits). The server accepting them is the
// proof that they are valid. It then collects the cluster through the
// rbac-agent's live source: the collection succeeds, the oversized role is
// named as unaudited and judged as RBAC-050, every chunk passes the
// contract, and the access engine agrees with SubjectAccessReview on
// queries about each object.
func TestEdgeObjects(t *testing.T) {
	server(t) // skips under -short or without etcd
	ctx := context.Background()
	s, err := kube.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	opts := metav1.CreateOptions{}
	user := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: name}
	}
	sa := func(ns, name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: name}
	}
	verbs := func(n int, last string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("verb%d", i)
		}
		out[n-1] = last
		return out
	}
	annotations := map[string]string{"example.com/blob": strings.Repeat("a", 70<<10)}
	for i := range 300 {
		annotations[fmt.Sprintf("example.com/a%d", i)] = "v"
	}
	long := "edge-" + strings.Repeat("x", 295)
	nsLong := "Team." + strings.Repeat("n", 295)
	roles := []struct {
		role    rbacv1.ClusterRole
		subject rbacv1.Subject
	}{
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-empty-verb"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{""}, APIGroups: []string{""}, Resources: []string{"pods"}}}}, user("ev")},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-empty-name"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "create"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{""}}}}, user("en")},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-empty-resource"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{""}}}}, user("er")},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-empty-url"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"", "/edge-only"}}}}, user("eu")},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-annotated", Annotations: annotations},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}}, sa("Team.Alpha", "bot")},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: long},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}, sa(nsLong, "bot")},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-71-verbs"},
			Rules: []rbacv1.PolicyRule{{Verbs: verbs(71, "deletecollection"), APIGroups: []string{""}, Resources: []string{"events"}}}},
			rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "many"}},
		{rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-too-many-verbs"},
			Rules: []rbacv1.PolicyRule{{Verbs: verbs(5000, "get"), APIGroups: []string{""}, Resources: []string{"nodes"}}}}, user("tm")},
	}
	for _, r := range roles {
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &r.role, opts); err != nil {
			t.Fatalf("the API server refuses ClusterRole %.40s...: %v", r.role.Name, err)
		}
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.role.Name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.role.Name},
			Subjects: []rbacv1.Subject{r.subject}}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, b, opts); err != nil {
			t.Fatalf("the API server refuses ClusterRoleBinding %.40s...: %v", b.Name, err)
		}
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "edge"}}, opts); err != nil {
		t.Fatal(err)
	}
	userNS := user("un")
	userNS.Namespace = "elsewhere" // the authorizer ignores it
	if _, err := admin.RbacV1().RoleBindings("edge").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "edge-user-namespace"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edge-annotated"},
		Subjects: []rbacv1.Subject{userNS}}, opts); err != nil {
		t.Fatalf("the API server refuses a User subject with a namespace: %v", err)
	}
	edgeSettle(t, admin)

	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := collect.NewLive(kubeclient.New(admin), "edge", s.Host, v).Load(ctx)
	if err != nil {
		t.Fatalf("live collection failed on objects the API server accepts: %v", err)
	}
	if snap.UnauditedCount != 1 || len(snap.Unaudited) != 1 || snap.Unaudited[0].GetName() != "edge-too-many-verbs" {
		t.Errorf("unaudited = %d %v, want the ClusterRole edge-too-many-verbs alone", snap.UnauditedCount, snap.Unaudited)
	}
	chunks := snap.Chunks(0)
	for i, c := range chunks {
		if err := v.Validate(&secureauditv1.CollectResponse{Chunk: c}); err != nil {
			t.Fatalf("chunk %d breaks the contract: %v", i, err)
		}
	}
	built := snapshot.Build(chunks, nil)
	var tooLarge []string
	for _, f := range rules.Evaluate(built) {
		if f.GetRuleId() == rules.TooLarge {
			tooLarge = append(tooLarge, f.GetRole().GetName())
		}
	}
	if len(tooLarge) != 1 || tooLarge[0] != "edge-too-many-verbs" {
		t.Errorf("RBAC-050 findings name %v, want [edge-too-many-verbs]", tooLarge)
	}
	e := access.New(built)
	res := func(verb, resource, ns, name string) access.Attributes {
		return access.Attributes{ResourceRequest: true, Verb: verb, Resource: resource, Namespace: ns, Name: name}
	}
	path := func(verb, p string) access.Attributes { return access.Attributes{Verb: verb, Path: p} }
	queries := []struct {
		id   access.Identity
		a    access.Attributes
		want bool
	}{
		{access.ForUser("ev"), res("get", "pods", "default", "web"), false},
		{access.ForUser("ev"), res("list", "pods", "default", ""), false},
		{access.ForUser("en"), res("list", "pods", "default", ""), true},
		{access.ForUser("en"), res("list", "pods", "", ""), true},
		{access.ForUser("en"), res("create", "pods", "default", ""), true},
		{access.ForUser("en"), res("get", "pods", "default", "web"), false},
		{access.ForUser("er"), res("get", "pods", "default", "web"), false},
		{access.ForUser("eu"), path("get", "/metrics"), false},
		{access.ForUser("eu"), path("get", "/edge-only"), true},
		{access.ForServiceAccount("Team.Alpha", "bot"), res("get", "configmaps", "default", "x"), true},
		{access.ForServiceAccount("team.alpha", "bot"), res("get", "configmaps", "default", "x"), false},
		{access.ForServiceAccount(nsLong, "bot"), res("get", "secrets", "default", "x"), true},
		{access.ForUser("someone", "many"), res("deletecollection", "events", "default", ""), true},
		{access.ForUser("someone", "many"), res("delete", "events", "default", "e"), false},
		{access.ForUser("un"), res("get", "configmaps", "edge", "x"), true},
		{access.ForUser("un"), res("get", "configmaps", "elsewhere", "x"), false},
	}
	for _, q := range queries {
		sar, err := review(ctx, admin, q.id, q.a)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Allowed(q.id, q.a).Allowed
		if sar != q.want || got != sar {
			t.Errorf("%.60s %+v: SubjectAccessReview %v, engine %v, expected %v", q.id.Name, q.a, sar, got, q.want)
		}
	}
	// Requests no client can make (an empty verb, resource or path) are
	// still asked: SubjectAccessReview and the engine compare strings the
	// same way, so they agree on them too.
	for _, q := range []struct {
		id access.Identity
		a  access.Attributes
	}{
		{access.ForUser("ev"), res("", "pods", "default", "")},
		{access.ForUser("er"), res("get", "", "default", "")},
		{access.ForUser("eu"), path("get", "")},
		{access.ForUser("en"), res("get", "pods", "default", "")},
	} {
		sar, err := review(ctx, admin, q.id, q.a)
		if err != nil {
			t.Logf("%s %+v: the API server refuses the review itself: %v", q.id.Name, q.a, err)
			continue
		}
		if got := e.Allowed(q.id, q.a).Allowed; got != sar {
			t.Errorf("%s %+v: SubjectAccessReview %v, engine %v", q.id.Name, q.a, sar, got)
		}
	}
	// The oversized role is left out, so the engine cannot grant what it
	// grants; the report says so (RBAC-050) rather than guess.
	if sar, err := review(ctx, admin, access.ForUser("tm"), res("get", "nodes", "", "n")); err != nil || !sar {
		t.Errorf("SubjectAccessReview for the oversized role's grant: %v %v, want allowed", sar, err)
	}
	if e.Allowed(access.ForUser("tm"), res("get", "nodes", "", "n")).Allowed {
		t.Error("the engine grants through a role left out of the snapshot")
	}
}

// edgeSettle waits until the authorizer has seen the objects written so
// far: it writes a sentinel ClusterRole and ClusterRoleBinding last and
// polls until a SubjectAccessReview allows what they grant.
func edgeSettle(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	opts := metav1.CreateOptions{}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "edge-sentinel"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{"sentinel"}, Resources: []string{"edge"}}}}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings("edge").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "edge-sentinel"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edge-sentinel"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "edge-sentinel"}}}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "edge-sentinel"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edge-sentinel"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "edge-sentinel"}}}, opts); err != nil {
		t.Fatal(err)
	}
	id := access.Identity{Name: "edge-sentinel"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := review(ctx, c, id, access.Attributes{ResourceRequest: true, Verb: "get", APIGroup: "sentinel", Resource: "edge"})
		if err != nil {
			t.Fatal(err)
		}
		if a {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the API server's authorizer did not see the sentinel binding within 30s")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not timing
	}
}
