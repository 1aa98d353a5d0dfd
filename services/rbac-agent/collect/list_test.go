package collect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"secureaudit.dev/services/rbac-agent/collect"
)

// TestLargeListInOrder: a List of more items than are read in parallel at
// once (several windows, on several goroutines) gives the objects in the
// list's order, and the first bad item in that order is the error, as
// reading the items one by one would: a duplicate before an invalid object
// names the duplicate, the invalid one alone names it, and items of other
// kinds are counted.
func TestLargeListInOrder(t *testing.T) {
	v := newValidator(t)
	const n = 1500
	role := func(i int) map[string]any {
		return map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]any{"name": fmt.Sprintf("r%04d", i), "namespace": "ns"},
			"rules":    []any{map[string]any{"apiGroups": []string{""}, "resources": []string{"pods"}, "verbs": []string{"get"}}}}
	}
	write := func(t *testing.T, items []any) string {
		t.Helper()
		data, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "list.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	items := func() []any {
		out := make([]any, n)
		for i := range out {
			out[i] = role(i)
		}
		out[10] = map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s", "namespace": "ns"}}
		return out
	}
	t.Run("in order", func(t *testing.T) {
		snap, err := collect.NewFiles(write(t, items()), "test", v, collect.WithClock(clock)).Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Roles) != n-1 || snap.Skipped["Secret"] != 1 {
			t.Fatalf("%d roles, skipped %v; want %d and one Secret", len(snap.Roles), snap.Skipped, n-1)
		}
		j := 0
		for i := range n {
			if i == 10 {
				continue
			}
			if got, want := snap.Roles[j].GetMeta().GetName(), fmt.Sprintf("r%04d", i); got != want {
				t.Fatalf("role %d is %s, want %s", j, got, want)
			}
			j++
		}
	})
	invalid := role(1200)
	invalid["metadata"].(map[string]any)["name"] = "a/b"
	for _, tc := range []struct {
		name string
		edit func([]any)
		want string
	}{
		{"duplicate first", func(it []any) { it[700] = role(3); it[1200] = invalid }, "items[700]: Role ns/r0003: duplicate object, also in"},
		{"invalid alone", func(it []any) { it[1200] = invalid }, "items[1200]: Role ns/a/b: invalid"},
		{"undecodable", func(it []any) {
			it[513] = map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": "x", "namespace": "ns"}, "rules": "no"}
			it[1200] = invalid
		}, "items[513]: Role ns/x: decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := items()
			tc.edit(it)
			_, err := collect.NewFiles(write(t, it), "test", v, collect.WithClock(clock)).Load(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// BenchmarkLoadList loads a List of 50,000 Roles and RoleBindings (21 MB of
// JSON) from a file: the decoding, conversion and checks of a large
// snapshot, read on every core (-cpu 1,2 shows the parallel read's effect).
func BenchmarkLoadList(b *testing.B) {
	items := make([]any, 0, 50_000)
	for i := range 25_000 {
		ns := fmt.Sprintf("ns-%03d", i%200)
		items = append(items,
			map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
				"metadata": map[string]any{"name": fmt.Sprintf("role-%05d", i), "namespace": ns, "labels": map[string]string{"app": "a", "team": "t"}},
				"rules": []any{
					map[string]any{"apiGroups": []string{""}, "resources": []string{"pods", "services", "configmaps"}, "verbs": []string{"get", "list", "watch"}},
					map[string]any{"apiGroups": []string{"apps"}, "resources": []string{"deployments"}, "verbs": []string{"get", "update", "patch"}},
				}},
			map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
				"metadata": map[string]any{"name": fmt.Sprintf("binding-%05d", i), "namespace": ns},
				"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": fmt.Sprintf("role-%05d", i)},
				"subjects": []any{
					map[string]any{"kind": "ServiceAccount", "name": fmt.Sprintf("sa-%05d", i), "namespace": ns},
					map[string]any{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "00000000-0000-4000-8000-000000000001"},
				}})
	}
	data, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "list.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	v := newValidator(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		snap, err := collect.NewFiles(path, "test", v, collect.WithClock(clock)).Load(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Roles) != 25_000 || len(snap.RoleBindings) != 25_000 {
			b.Fatalf("%d roles, %d bindings", len(snap.Roles), len(snap.RoleBindings))
		}
	}
}
