package kube_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/services/rbac-agent/watch"
	"secureaudit.dev/test/kube"
)

// requestCounter counts the requests other than watches.
type requestCounter struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("watch") != "true" {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestWatchCache runs the rbac-agent's informer cache against a real API
// server of its own, with the rbac-agent's ServiceAccount: audits read it
// without a request; objects created, changed and deleted between audits
// show up in the next audit (once the cache reached the write's
// resourceVersion), whose objects are then exactly a direct list's; the header records resourceVersions and how old the
// data is; with the API server stopped the cache refuses to vouch for its
// data past the bound (and the direct list fails), and once it is back the
// informers watch again and the next change shows up.
func TestWatchCache(t *testing.T) {
	if srv == nil {
		t.Skip(skipReason)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := kube.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	_, token := agentKubeconfig(t, s, admin)
	cfg := s.Config(token)
	kubeclient.Configure(cfg)
	counter := &requestCounter{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	agent, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	v, err := validation.New(log)
	if err != nil {
		t.Fatal(err)
	}

	// The starting state.
	ns := "watch-a"
	mustCreate(t, func() error {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
		return err
	})
	readPods := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	mustCreate(t, func() error {
		_, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r1"}, Rules: []rbacv1.PolicyRule{readPods}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b1"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "r1"}, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}}}, metav1.CreateOptions{})
		return err
	})

	wc, err := watch.New(agent, log, watch.WithMaxStaleness(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wc.Run(ctx); close(done) }() //nolint:errcheck // ends with ctx
	defer func() { cancel(); <-done }()
	src := collect.NewCached(wc, kubeclient.New(agent), collect.NewLive(kubeclient.New(agent), "watch", s.Host, v), log, "watch", s.Host, v)

	load := func() *collect.Snapshot {
		t.Helper()
		snap, err := src.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range snap.Chunks(collect.MaxChunkObjects) {
			if err := v.Validate(c); err != nil {
				t.Fatalf("chunk breaks the contract: %v", err)
			}
		}
		return snap
	}
	first := load()
	h := first.Header
	if h.GetCacheListedAt() == nil || h.GetDataAsOf() == nil || len(h.GetResourceVersions()) != len(collect.Resources) {
		t.Fatalf("header of a cached snapshot: cache_listed_at %v, data_as_of %v, resource_versions %v", h.GetCacheListedAt(), h.GetDataAsOf(), h.GetResourceVersions())
	}
	if age := h.GetCollectedAt().AsTime().Sub(h.GetDataAsOf().AsTime()); age != 0 {
		t.Errorf("data %s old with every watch open", age)
	}
	if role(first, ns, "r1") == nil || binding(first, ns, "b1") == nil {
		t.Fatalf("the starting state is not in the snapshot")
	}

	// Warm audits make no request but watches.
	before := counter.n.Load()
	for range 5 {
		load()
	}
	if n := counter.n.Load() - before; n != 0 {
		t.Errorf("5 warm audits made %d requests", n)
	}

	// waitRV waits until the cache reflects resource up to rv.
	waitRV := func(resource, rv string) {
		t.Helper()
		want, _ := strconv.ParseUint(rv, 10, 64)
		deadline := time.Now().Add(30 * time.Second)
		for {
			view, err := wc.View(ctx)
			if err == nil {
				if got, _ := strconv.ParseUint(view.ResourceVersions[resource], 10, 64); got >= want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cache did not reach %s resourceVersion %s (view error %v)", resource, rv, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Created, changed and deleted between audits.
	r2, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r2"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := admin.RbacV1().Roles(ns).Get(ctx, "r1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r1.Rules = append(r1.Rules, rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"pods/exec"}})
	r1, err = admin.RbacV1().Roles(ns).Update(ctx, r1, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RbacV1().RoleBindings(ns).Delete(ctx, "b1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A later binding: once the cache has it, it has the deletion before.
	b2, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b2"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "r2"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{ServiceAccountName: "app",
		Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1", Env: []corev1.EnvVar{{Name: "MODE", Value: "prod"}}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRV("roles", r1.ResourceVersion)
	waitRV("roles", r2.ResourceVersion)
	waitRV("rolebindings", b2.ResourceVersion)
	waitRV("pods", pod.ResourceVersion)
	next := load()
	if role(next, ns, "r2") == nil {
		t.Error("created Role r2 missing from the next audit")
	}
	if r := role(next, ns, "r1"); r == nil || len(r.GetRules()) != 2 {
		t.Errorf("changed Role r1 in the next audit: %v", r)
	}
	if binding(next, ns, "b1") != nil || binding(next, ns, "b2") == nil {
		t.Error("deleted RoleBinding b1 still in the next audit, or b2 missing")
	}
	if w := workload(next, ns, "web"); w == nil || w.GetServiceAccount() != "app" || len(w.GetImages()) != 1 {
		t.Errorf("created Pod web in the next audit: %v", w)
	}
	// The cache's source converts and validates only what changed since
	// its previous snapshot (collect.Memo): its objects are exactly what a
	// direct list converts afresh.
	direct, err := collect.NewLive(kubeclient.New(agent), "watch", s.Host, v).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(direct, next, protocmp.Transform(), cmpopts.IgnoreFields(collect.Snapshot{}, "Header")); diff != "" {
		t.Errorf("the snapshot from the cache differs from a direct list (-list +cache):\n%s", diff)
	}

	// A broken watch: the API server goes away.
	reopens := wc.Reopens()
	s.StopAPIServer()
	time.Sleep(3 * time.Second) // past the 2 s bound
	if _, err := src.Load(ctx); err == nil || !strings.Contains(err.Error(), "the watch cache was not used") {
		t.Errorf("Load with the API server away for 3 s = %v, want a refusal of the stale cache", err)
	}
	if err := wc.Fresh(); err == nil {
		t.Error("the cache vouches for its data with every watch broken for 3 s")
	}
	if err := s.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	// Recovered: every watch open again and the data fresh. A list alone
	// makes Fresh hold for a while; the watches come back with client-go's
	// backoff, which reaches 30-60 s while the restarted API server still
	// refuses (its authorizer not ready yet), hence the bound.
	deadline := time.Now().Add(2 * time.Minute)
	for wc.Watching() != nil || wc.Fresh() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the cache did not recover within 2 minutes: watching %v, fresh %v", wc.Watching(), wc.Fresh())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if wc.Reopens() <= reopens {
		t.Errorf("no watch opened again after the restart (%d before, %d after)", reopens, wc.Reopens())
	}
	r3, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r3"}, Rules: []rbacv1.PolicyRule{readPods}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RbacV1().Roles(ns).Delete(ctx, "r2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRV("roles", r3.ResourceVersion)
	after := load()
	if role(after, ns, "r3") == nil {
		t.Error("Role r3, created after the restart, missing")
	}
	deadline = time.Now().Add(10 * time.Second)
	for role(after, ns, "r2") != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = load()
	}
	if role(after, ns, "r2") != nil {
		t.Error("Role r2, deleted after the restart, still there")
	}
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}

func role(s *collect.Snapshot, ns, name string) *secureauditv1.Role {
	for _, r := range s.Roles {
		if r.GetMeta().GetNamespace() == ns && r.GetMeta().GetName() == name {
			return r
		}
	}
	return nil
}

func binding(s *collect.Snapshot, ns, name string) *secureauditv1.RoleBinding {
	for _, b := range s.RoleBindings {
		if b.GetMeta().GetNamespace() == ns && b.GetMeta().GetName() == name {
			return b
		}
	}
	return nil
}

func workload(s *collect.Snapshot, ns, name string) *secureauditv1.Workload {
	for _, w := range s.Workloads {
		if w.GetMeta().GetNamespace() == ns && w.GetMeta().GetName() == name {
			return w
		}
	}
	return nil
}
