package collect_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
)

// viewer is a watch cache standing still.
type viewer struct {
	view *collect.View
	err  error
}

func (v *viewer) View(context.Context) (*collect.View, error) { return v.view, v.err }

func TestCached(t *testing.T) {
	client := newFake(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "listed"}})
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	items := make([][]runtime.Object, len(collect.Resources))
	items[0] = []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cached"}}}
	items[2] = []runtime.Object{&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "cached"}}}
	v := &viewer{view: &collect.View{Items: items, ResourceVersions: map[string]string{"namespaces": "7", "roles": "9"},
		Age: 12 * time.Second, ListedAt: now.Add(-time.Hour)}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := kubeclient.New(client)
	live := collect.NewLive(api, "prod", "https://api.example:6443", newValidator(t), collect.WithClock(clock))
	src := collect.NewCached(v, api, live, log, "prod", "https://api.example:6443", newValidator(t), collect.WithClock(clock))

	snap, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := snap.Header
	if len(snap.Namespaces) != 1 || snap.Namespaces[0].GetMeta().GetName() != "cached" || len(snap.Roles) != 1 {
		t.Fatalf("snapshot from the cache: %v %v", snap.Namespaces, snap.Roles)
	}
	if got := h.GetCollectedAt().AsTime().Sub(h.GetDataAsOf().AsTime()); got != 12*time.Second {
		t.Errorf("data age %s, want the view's 12s", got)
	}
	if !h.GetCacheListedAt().AsTime().Equal(now.Add(-time.Hour)) || h.GetResourceVersions()["roles"] != "9" || h.GetServerVersion() != "v1.34.1" {
		t.Errorf("header %v", h)
	}
	// Version and discovery are read once within HeaderTTL; the objects never.
	calls := len(client.Actions())
	for range 3 {
		if _, err := src.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(client.Actions()) - calls; n != 0 {
		t.Errorf("3 more loads from the cache made %d requests: %v", n, client.Actions()[calls:])
	}
	now = now.Add(collect.HeaderTTL)
	if _, err := src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(client.Actions()) == calls {
		t.Error("version and discovery not read again after HeaderTTL")
	}

	// A cache that cannot vouch for its data: a direct list.
	v.err = errors.New("the watch of pods has been closed since ...")
	snap, err = src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Namespaces) != 1 || snap.Namespaces[0].GetMeta().GetName() != "listed" || snap.Header.GetCacheListedAt() != nil ||
		!snap.Header.GetDataAsOf().AsTime().Equal(snap.Header.GetCollectedAt().AsTime()) {
		t.Errorf("fallback snapshot: %v, header %v", snap.Namespaces, snap.Header)
	}
}
