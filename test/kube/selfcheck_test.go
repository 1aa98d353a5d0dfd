package kube_test

import (
	"context"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"secureaudit.dev/deploy/rbac"
	"secureaudit.dev/deploy/scopes"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/services/rbac-agent/selfcheck"
	"secureaudit.dev/test/kube"
)

// TestCredentialSelfCheck runs the rbac-agent's credential self-check (CC6.2)
// against the real authorizer: with its own ServiceAccount, bound by
// deploy/rbac exactly as the scope manifest declares, it finds nothing; with
// a ServiceAccount that also reads Secrets in one namespace and may create
// Pods cluster-wide, it names those permissions.
func TestCredentialSelfCheck(t *testing.T) {
	s := server(t)
	ctx := context.Background()
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.Apply(ctx, admin, rbac.RBACAgent()); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	data, err := scopes.Manifest("rbac-agent")
	if err != nil {
		t.Fatal(err)
	}
	m, err := scope.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	declared := selfcheck.RulesFromManifest(m.Spec.Permissions)
	if len(declared) == 0 {
		t.Fatal("no Kubernetes rules in the rbac-agent's manifest")
	}

	// An over-privileged twin: the same read-only ClusterRole, plus Secrets in
	// one namespace and Pod creation everywhere.
	mustCreate := func(err error) {
		t.Helper()
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "selfcheck-payments"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.CoreV1().ServiceAccounts("secureaudit").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "overprivileged"}}, metav1.CreateOptions{})
	mustCreate(err)
	sa := rbacv1.Subject{Kind: "ServiceAccount", Name: "overprivileged", Namespace: "secureaudit"}
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "selfcheck-reader"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "secureaudit-rbac-reader"}, Subjects: []rbacv1.Subject{sa}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().Roles("selfcheck-payments").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secrets"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().RoleBindings("selfcheck-payments").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "secrets"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "secrets"}, Subjects: []rbacv1.Subject{sa}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "selfcheck-pod-creator"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "selfcheck-pod-creator"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "selfcheck-pod-creator"}, Subjects: []rbacv1.Subject{sa}}, metav1.CreateOptions{})
	mustCreate(err)

	clientAs := func(name string) kubernetes.Interface {
		t.Helper()
		tok, err := admin.CoreV1().ServiceAccounts("secureaudit").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.NewForConfig(s.Config(tok.Status.Token))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("scoped ServiceAccount", func(t *testing.T) {
		rep, err := selfcheck.Check(ctx, clientAs("rbac-agent"), declared)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Errorf("violations for the correctly scoped ServiceAccount: %+v", rep.Violations)
		}
		if rep.Namespaces < 2 || rep.Probes != len(selfcheck.Probes) {
			t.Errorf("checked %d namespaces and %d probes", rep.Namespaces, rep.Probes)
		}
	})
	t.Run("over-privileged ServiceAccount", func(t *testing.T) {
		rep, err := selfcheck.Check(ctx, clientAs("overprivileged"), declared)
		if err != nil {
			t.Fatal(err)
		}
		want := []selfcheck.Violation{
			{Permission: "create pods", Source: "access"},
			{Namespace: "selfcheck-payments", Permission: "get secrets", Source: "rules"},
		}
		for _, w := range want {
			found := false
			for _, v := range rep.Violations {
				found = found || v == w
			}
			if !found {
				t.Errorf("violation %+v not reported; got %+v", w, rep.Violations)
			}
		}
		for _, v := range rep.Violations {
			if v.Source == "rules" && v.Namespace != "selfcheck-payments" && !strings.HasPrefix(v.Permission, "create pods") {
				t.Errorf("unexpected violation %+v", v)
			}
		}
		if !strings.Contains(rep.Summary(), "VIOLATION") {
			t.Errorf("summary %q does not say violation", rep.Summary())
		}
		// The reviews run 8 at a time by default; one at a time, as
		// before, the evidence presented is the same.
		serial, err := selfcheck.Check(ctx, clientAs("overprivileged"), declared, selfcheck.WithParallelism(1))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := selfcheck.Presented(serial, nil), selfcheck.Presented(rep, nil); a != b {
			t.Errorf("presented one at a time:\n%s\n8 at a time:\n%s", a, b)
		}
	})
}
