package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"secureaudit.dev/test/harness"
)

// TestVersion: every service binary answers -version, and the command line
// `secureaudit version`, with its name, module path and version, and the VCS
// revision recorded in the binary (as `go version -m` reads it), or
// "revision unknown" when none was recorded.
func TestVersion(t *testing.T) {
	cases := map[string][]string{"secureaudit": {"version"}}
	for _, s := range harness.Services {
		cases[s] = []string{"-version"}
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(env.binDir, name)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", name, args, err, out)
			}
			meta, err := exec.Command("go", "version", "-m", bin).Output()
			if err != nil {
				t.Fatalf("go version -m: %v", err)
			}
			module, revision := "", ""
			for _, line := range strings.Split(string(meta), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) >= 3 && f[0] == "mod":
					module = f[1] + " " + f[2]
				case len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
					revision = "revision " + strings.TrimPrefix(f[1], "vcs.revision=")
				}
			}
			if revision == "" {
				revision = "revision unknown"
			}
			line := strings.TrimSpace(string(out))
			if want := filepath.Base(name) + " " + module + " " + revision; !strings.HasPrefix(line, want) {
				t.Errorf("%s %v printed %q, want it to start with %q", name, args, line, want)
			}
		})
	}
}
