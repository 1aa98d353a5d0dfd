package collect_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"secureaudit.dev/services/rbac-agent/collect"
)

// TestRefusesSpecialAndOversizedFiles: a named pipe (which would block the
// load forever) and a file over the size limit are refused at once, named,
// whether given as the snapshot or found in its directory.
func TestRefusesSpecialAndOversizedFiles(t *testing.T) {
	role := []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: ns}\nrules: []\n")
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) (path, named string)
		max   int64
		want  string
	}{
		{"named pipe", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "roles.yaml")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip("no named pipes:", err)
			}
			return p, p
		}, 0, "is not a regular file (a named pipe)"},
		{"named pipe in a directory", func(t *testing.T, dir string) (string, string) {
			if err := os.WriteFile(filepath.Join(dir, "a.yaml"), role, 0o600); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "b.json")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip("no named pipes:", err)
			}
			return dir, p
		}, 0, "is not a regular file (a named pipe)"},
		{"over the limit", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "roles.yaml")
			if err := os.WriteFile(p, role, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, p
		}, 64, "bytes, over the limit of 64 bytes (-max-snapshot-file-size)"},
		{"within the limit", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "roles.yaml")
			if err := os.WriteFile(p, role, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, p
		}, int64(len(role)), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, named := tc.setup(t, t.TempDir())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := collect.NewFiles(path, "test", newValidator(t), collect.WithMaxFileSize(tc.max)).Load(ctx)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), named) {
				t.Fatalf("Load: %v\nwant an error naming %s and saying %q", err, named, tc.want)
			}
		})
	}
}
