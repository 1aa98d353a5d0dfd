package kube_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"secureaudit.dev/deploy/rbac"
	"secureaudit.dev/deploy/scopes"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/test/kube"
)

// counting counts the list requests that carried a continue token.
type counting struct {
	next      http.RoundTripper
	continued atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("continue") != "" {
		c.continued.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestManifestMatchesScope checks that deploy/rbac grants the rbac-agent
// exactly the permissions its scope manifest declares.
func TestManifestMatchesScope(t *testing.T) {
	var scope struct {
		Spec struct {
			Permissions []rbacv1.PolicyRule `json:"permissions"`
		} `json:"spec"`
	}
	data, err := scopes.Manifest("rbac-agent")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &scope); err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	for doc := range strings.SplitSeq(string(rbac.RBACAgent()), "\n---\n") {
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "ClusterRole" {
			role = &r
		}
	}
	if role == nil {
		t.Fatal("deploy/rbac has no ClusterRole")
	}
	if fmt.Sprint(role.Rules) != fmt.Sprint(scope.Spec.Permissions) {
		t.Errorf("ClusterRole rules %v, scope manifest permissions %v", role.Rules, scope.Spec.Permissions)
	}
}

// TestLiveCollection runs the rbac-agent's live source with a token of its
// own ServiceAccount, bound to the read-only ClusterRole of deploy/rbac,
// against a cluster holding more than 5,000 bindings.
func TestLiveCollection(t *testing.T) {
	s := server(t)
	ctx := context.Background()
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.Apply(ctx, admin, rbac.RBACAgent()); err != nil {
		t.Fatal(err)
	}
	const namespaces, perNamespace, clusterBindings = 25, 200, 100
	populate(t, admin, namespaces, perNamespace, clusterBindings)

	tok, err := admin.CoreV1().ServiceAccounts("secureaudit").CreateToken(ctx, "rbac-agent",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	cfg := s.Config(tok.Status.Token)
	count := &counting{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { count.next = rt; return count }
	agent, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := collect.NewLive(kubeclient.New(agent), "test", s.Host, v, collect.WithPageSize(500)).Load(ctx)
	if err != nil {
		t.Fatalf("collect as the rbac-agent: %v", err)
	}
	counts := snap.Counts()
	if got, want := counts.GetRoleBindings(), uint32(namespaces*perNamespace); got < want {
		t.Errorf("collected %d role bindings, want at least %d", got, want)
	}
	if got := counts.GetRoleBindings() + counts.GetClusterRoleBindings(); got < 5000 {
		t.Errorf("collected %d bindings, want at least 5000", got)
	}
	if got := counts.GetClusterRoleBindings(); got < clusterBindings {
		t.Errorf("collected %d cluster role bindings, want at least %d", got, clusterBindings)
	}
	if got := counts.GetServiceAccounts(); got < namespaces {
		t.Errorf("collected %d service accounts, want at least %d", got, namespaces)
	}
	if got := snap.Header.GetServerVersion(); got != kube.Version {
		t.Errorf("header server version %q, want %q", got, kube.Version)
	}
	// 5,000 role bindings in pages of 500 take at least 9 continued requests.
	if got := count.continued.Load(); got < 9 {
		t.Errorf("%d list requests continued a previous page, want at least 9 (pagination)", got)
	}

	// The same token cannot read Secrets: the API server answers 403.
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"list secrets in all namespaces", func() error {
			_, err := agent.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list secrets in kube-system", func() error {
			_, err := agent.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"get a secret", func() error {
			_, err := agent.CoreV1().Secrets("ns-0").Get(ctx, "db", metav1.GetOptions{})
			return err
		}},
		{"create a role binding", func() error {
			_, err := agent.RbacV1().RoleBindings("ns-0").Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			}, metav1.CreateOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !apierrors.IsForbidden(err) {
				t.Errorf("got %v, want 403 Forbidden", err)
			}
		})
	}
}

// populate creates namespaces ns-0.. each with a ServiceAccount, a Secret,
// a Role and perNamespace RoleBindings, and clusterBindings
// ClusterRoleBindings, with a few concurrent writers.
func populate(t *testing.T, c kubernetes.Interface, namespaces, perNamespace, clusterBindings int) {
	t.Helper()
	ctx := context.Background()
	opts := metav1.CreateOptions{}
	var jobs []func() error
	for i := range namespaces {
		ns := fmt.Sprintf("ns-%d", i)
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, opts); err != nil {
			t.Fatal(err)
		}
		for _, create := range []func() error{
			func() error {
				_, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, opts)
				return err
			},
			func() error {
				_, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "x"}}, opts)
				return err
			},
			func() error {
				_, err := c.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
					ObjectMeta: metav1.ObjectMeta{Name: "reader"},
					Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
				}, opts)
				return err
			},
		} {
			if err := create(); err != nil {
				t.Fatal(err)
			}
		}
		for j := range perNamespace {
			jobs = append(jobs, func() error {
				_, err := c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rb-%d", j)},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
					Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%d", j)}},
				}, opts)
				return err
			})
		}
	}
	for j := range clusterBindings {
		jobs = append(jobs, func() error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("crb-%d", j)},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: fmt.Sprintf("ns-%d", j%namespaces)}},
			}, opts)
			return err
		})
	}
	if err := parallel(8, jobs); err != nil {
		t.Fatal(err)
	}
}

// parallel runs jobs on n workers and returns the first error.
func parallel(n int, jobs []func() error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  atomic.Int64
	)
	for range n {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				if err := jobs[i](); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
