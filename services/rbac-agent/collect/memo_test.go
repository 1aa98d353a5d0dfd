package collect_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
)

// cluster is a watch cache's content by resource, as View returns it.
type cluster map[string][]runtime.Object

func (c cluster) items() [][]runtime.Object {
	out := make([][]runtime.Object, len(collect.Resources))
	for i, r := range collect.Resources {
		out[i] = c[r]
	}
	return out
}

func objMeta(ns, name, uid, rv string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), ResourceVersion: rv}
}

// TestMemo builds snapshots of a changing cluster with one memo, as the
// watch cache's source does audit after audit, and checks each against a
// snapshot converted afresh: objects created, changed (a new
// resourceVersion), deleted, deleted and created again under the same name
// (a new UID), left out for a control character or a limit, and objects
// without a UID or resourceVersion, are all exactly as a fresh conversion
// has them; and only the objects that changed are converted again.
func TestMemo(t *testing.T) {
	v := newValidator(t)
	header := &secureauditv1.SnapshotHeader{Cluster: "prod", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE}
	readPods := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	manyVerbs := make([]string, 5000) // valid in the API server, past the contract's 4,096
	for i := range manyVerbs {
		manyVerbs[i] = fmt.Sprintf("verb%d", i)
	}
	role := func(name, uid, rv string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: objMeta("a", name, uid, rv), Rules: rules}
	}
	binding := func(name, uid, rv, roleName, user string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: objMeta("a", name, uid, rv),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}, Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: user}}}
	}
	pod := func(name, uid, rv, sa, image string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: objMeta("a", name, uid, rv), Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "c", Image: image}}}}
	}
	first := cluster{
		"namespaces":      {&corev1.Namespace{ObjectMeta: objMeta("", "a", "ns-a", "1")}},
		"serviceaccounts": {&corev1.ServiceAccount{ObjectMeta: objMeta("a", "app", "sa-app", "2")}},
		"roles": {
			role("r1", "role-r1", "3", readPods),
			role("gone", "role-gone", "4", readPods),
			role("esc\x1bape", "role-esc", "5", readPods),
			role("huge", "role-huge", "6", rbacv1.PolicyRule{Verbs: manyVerbs, APIGroups: []string{""}, Resources: []string{"pods"}}),
			role("no-rv", "role-no-rv", "", readPods),
		},
		"rolebindings": {binding("b1", "rb-b1", "7", "r1", "alice"), binding("again", "rb-again-1", "8", "r1", "bob")},
		"pods":         {pod("web", "pod-web", "9", "app", "registry.example/web:1")},
	}
	// The same cluster after writes: r1 changed, gone deleted, r2 created,
	// b1 changed, again deleted and created again (a new UID, the same
	// resourceVersion number as before by chance), web changed.
	second := cluster{
		"namespaces":      first["namespaces"],
		"serviceaccounts": first["serviceaccounts"],
		"roles": {
			role("r1", "role-r1", "10", readPods, rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"pods/exec"}}),
			role("r2", "role-r2", "11", rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"secrets"}}),
			first["roles"][2], first["roles"][3],
			role("no-rv", "role-no-rv", "", rbacv1.PolicyRule{Verbs: []string{"watch"}, APIGroups: []string{""}, Resources: []string{"pods"}}),
		},
		"rolebindings": {binding("b1", "rb-b1", "12", "r2", "carol"), binding("again", "rb-again-2", "8", "r2", "dave")},
		"pods":         {pod("web", "pod-web", "13", "app", "registry.example/web:2")},
	}

	memo := collect.NewMemo()
	for i, c := range []cluster{first, first, second, second, first} {
		got, err := memo.Build(v, header, c.items())
		if err != nil {
			t.Fatalf("build %d with the memo: %v", i, err)
		}
		want, err := collect.NewMemo().Build(v, header, c.items())
		if err != nil {
			t.Fatalf("build %d afresh: %v", i, err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("build %d: the snapshot from the memo differs from a fresh conversion (-fresh +memo):\n%s", i, diff)
		}
		if len(got.Unaudited) != 2 || !strings.Contains(got.Unaudited[0].GetName(), `\x1b`) && !strings.Contains(got.Unaudited[1].GetName(), `\x1b`) {
			t.Errorf("build %d: unaudited %v, want the escaped role and the huge one", i, got.Unaudited)
		}
	}
	// The objects converted by each build: the second build of the same
	// cluster converts only the object without a resourceVersion.
	memo = collect.NewMemo()
	for i, tc := range []struct {
		c    cluster
		want int
	}{
		{first, 10},
		{first, 1},
		{second, 1 + 5}, // no-rv; r1, r2, b1, again, web
		{second, 1},
		{first, 1 + 5}, // no-rv; r1, gone, b1, again, web: the old versions left the memo
	} {
		if _, err := memo.Build(v, header, tc.c.items()); err != nil {
			t.Fatal(err)
		}
		if got := memo.Converted(); got != tc.want {
			t.Errorf("build %d converted %d objects, want %d", i, got, tc.want)
		}
	}
}
