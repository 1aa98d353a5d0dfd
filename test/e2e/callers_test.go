package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallerPolicyRefusedAtStart: the orchestrator does not start with a
// caller policy that is missing, malformed, or names an unknown role or
// method; the error names the file and the line and entry at fault.
func TestCallerPolicyRefusedAtStart(t *testing.T) {
	head := "apiVersion: secureaudit.dev/v1\nkind: CallerPolicy\ncallers:\n"
	dir := t.TempDir()
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"no policy", "", "-callers is required"},
		{"malformed", "callers: [\n", "bad.yaml: yaml: line"},
		{"unknown role", head + "  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli\n    roles: [viewer, superuser]\n", `bad.yaml:5: callers[0]: unknown role "superuser"`},
		{"unknown RPC", head + "  - path: /ns/ci/sa/*\n    methods: [/secureaudit.v1.AuditService/DropAudits]\n", "bad.yaml:4: callers[0]: unknown method /secureaudit.v1.AuditService/DropAudits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-listen", "127.0.0.1:0", "-cert-dir", env.stack.PKIDir, "-db", filepath.Join(t.TempDir(), "db.sqlite")}
			if tc.policy != "" {
				file := filepath.Join(dir, "bad.yaml")
				if err := os.WriteFile(file, []byte(tc.policy), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-callers", file)
			}
			cmd := exec.Command(filepath.Join(env.binDir, "orchestrator"), args...)
			cmd.Env = append(os.Environ(), "SECUREAUDIT_CALLERS=")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("orchestrator started (and exited cleanly) with %s:\n%s", tc.name, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
