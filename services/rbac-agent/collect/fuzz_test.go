package collect_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"secureaudit.dev/services/rbac-agent/collect"
)

// FuzzSnapshotFile feeds arbitrary bytes to the snapshot loader as a YAML
// and as a JSON file, seeded with every good and bad fixture. It must never
// panic or hang, and whatever it accepts holds no name with a control
// character (they are refused, see TestNamesWithControlCharactersAreRefused).
// `go test` runs the seeds; `go test -fuzz FuzzSnapshotFile` explores.
func FuzzSnapshotFile(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, strings.HasSuffix(e.Name(), ".json"))
		}
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"a\u0000b"}}]}`), true)
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "snap.yaml"
		if asJSON {
			name = "snap.json"
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		snap, err := collect.NewFiles(path, "fuzz", v, collect.WithMaxFileSize(1<<20)).Load(ctx)
		if err != nil {
			return
		}
		var names []string
		for _, r := range snap.ClusterRoles {
			names = append(names, r.GetMeta().GetName())
		}
		for _, r := range snap.Roles {
			names = append(names, r.GetMeta().GetName(), r.GetMeta().GetNamespace())
		}
		for _, b := range snap.ClusterRoleBindings {
			names = append(names, b.GetMeta().GetName(), b.GetRoleRef().GetName())
			for _, s := range b.GetSubjects() {
				names = append(names, s.GetName(), s.GetNamespace())
			}
		}
		for _, b := range snap.RoleBindings {
			names = append(names, b.GetMeta().GetName(), b.GetMeta().GetNamespace(), b.GetRoleRef().GetName())
			for _, s := range b.GetSubjects() {
				names = append(names, s.GetName(), s.GetNamespace())
			}
		}
		for _, n := range names {
			if strings.ContainsFunc(n, unicode.IsControl) {
				t.Errorf("accepted a name with a control character: %q", n)
			}
		}
	})
}
