package selfcheck

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var declared = []Rule{
	{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "clusterroles", "rolebindings", "clusterrolebindings"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"serviceaccounts", "namespaces", "pods"}, Verbs: []string{"get", "list", "watch"}},
}

// fakeServer answers reviews with canned rules per namespace and a set of
// allowed probes, as an API server would.
func fakeServer(rules map[string][]authorizationv1.ResourceRule, allowed map[string]bool) *fake.Clientset {
	c := fake.NewSimpleClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}})
	c.PrependReactor("create", "selfsubjectrulesreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectRulesReview)
		r.Status.ResourceRules = append(everyoneRules(), rules[r.Spec.Namespace]...)
		return true, r, nil
	})
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		p := Probe{Verb: ra.Verb, Group: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource}
		r.Status.Allowed = allowed[p.String()]
		return true, r, nil
	})
	return c
}

func everyoneRules() []authorizationv1.ResourceRule {
	return []authorizationv1.ResourceRule{
		{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
		{Verbs: []string{"create"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"selfsubjectreviews"}},
	}
}

func readOnly() []authorizationv1.ResourceRule {
	return []authorizationv1.ResourceRule{
		{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "clusterroles", "rolebindings", "clusterrolebindings"}},
		{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"serviceaccounts", "namespaces", "pods"}},
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		rules   map[string][]authorizationv1.ResourceRule
		allowed map[string]bool
		want    []Violation
	}{
		{"exactly as declared", map[string][]authorizationv1.ResourceRule{"default": readOnly(), "payments": readOnly()}, nil, []Violation{}},
		{"secrets in one namespace", map[string][]authorizationv1.ResourceRule{"default": readOnly(),
			"payments": append(readOnly(), authorizationv1.ResourceRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}})},
			nil, []Violation{{Namespace: "payments", Permission: "get secrets", Source: "rules"}}},
		{"wildcard and probes", map[string][]authorizationv1.ResourceRule{"default": {{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}},
			map[string]bool{"impersonate users": true, "escalate clusterroles.rbac.authorization.k8s.io": true},
			[]Violation{
				{Permission: "escalate clusterroles.rbac.authorization.k8s.io", Source: "access"},
				{Permission: "impersonate users", Source: "access"},
				{Namespace: "default", Permission: "* *.*", Source: "rules"},
			}},
		{"declared read of pods is no violation", map[string][]authorizationv1.ResourceRule{"default": readOnly()}, map[string]bool{"create pods": true},
			[]Violation{{Permission: "create pods", Source: "access"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Check(context.Background(), fakeServer(tc.rules, tc.allowed), declared)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Violations) != len(tc.want) {
				t.Fatalf("violations %+v, want %+v", rep.Violations, tc.want)
			}
			for i := range tc.want {
				if rep.Violations[i] != tc.want[i] {
					t.Errorf("violation %d = %+v, want %+v", i, rep.Violations[i], tc.want[i])
				}
			}
			if rep.Namespaces != 2 || rep.Probes != len(Probes) {
				t.Errorf("checked %d namespaces and %d probes", rep.Namespaces, rep.Probes)
			}
			if got := Presented(rep, nil); rep.OK() != strings.Contains(got, `"outcome":"pass"`) {
				t.Errorf("presented %s for OK=%v", got, rep.OK())
			}
		})
	}
}

func TestRulesFromManifest(t *testing.T) {
	perms := []map[string]any{
		{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get"}},
		{"graph": []any{"User.Read.All"}},
	}
	got := RulesFromManifest(perms)
	if len(got) != 1 || got[0].Resources[0] != "pods" || got[0].Verbs[0] != "get" {
		t.Errorf("RulesFromManifest = %+v", got)
	}
}
