package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// scan runs the secureaudit binary's scan command.
func scan(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.binDir, "secureaudit"), append([]string{"scan"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestScanCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := scan(t, "--snapshot", filepath.Join(env.root, "examples", "cluster"),
		"--directory", filepath.Join(env.root, "examples", "directory.json"), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"report.md", "report.json"} {
		info, err := os.Stat(filepath.Join(out, f))
		if err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
		if info.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	if len(report.GetFindings()) == 0 {
		t.Error("scan report has no findings")
	}
	// The example holds a Node with kubelet v1.33.2: its semantics apply.
	if s := report.GetSemantics(); s.GetServerVersion() != "v1.33.2" || s.GetSource() != secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_NODES || s.GetStreamingNeedsCreate() {
		t.Errorf("semantics = %v, want v1.33.2 from the Nodes, get still exec", s)
	}
}

// TestScanServerVersion: --server-version decides the authorizer semantics
// and the report's header says so.
func TestScanServerVersion(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := scan(t, "--snapshot", filepath.Join(env.root, "examples", "cluster"), "--out", out,
		"--format", "json,md", "--server-version", "v1.36.0")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	if s := report.GetSemantics(); s.GetServerVersion() != "v1.36.0" || s.GetSource() != secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_FLAG || !s.GetStreamingNeedsCreate() {
		t.Errorf("semantics = %v, want v1.36.0 from the flag, create needed", s)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "**Authorizer semantics:** Kubernetes v1.36.0 (given with --server-version); exec, attach and port-forward need create"; !strings.Contains(string(md), want) {
		t.Errorf("report.md does not say %q", want)
	}
}

func TestScanWithoutDirectory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := scan(t, "--snapshot", filepath.Join(env.root, "examples", "cluster"), "--out", out, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "identity data: not available") {
		t.Errorf("output does not say identity data is unavailable:\n%s", stdout)
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	if report.GetDirectoryAvailable() {
		t.Error("directoryAvailable = true without a directory")
	}
	if _, err := os.Stat(filepath.Join(out, "report.md")); !os.IsNotExist(err) {
		t.Errorf("report.md written although only json was asked for (err %v)", err)
	}
}

func TestScanBadInput(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: [unclosed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"malformed snapshot", []string{"--snapshot", broken}, "broken.yaml"},
		{"missing snapshot", []string{"--snapshot", filepath.Join(dir, "absent")}, "absent"},
		{"no source", []string{}, "snapshot"},
		{"unknown format", []string{"--snapshot", broken, "--format", "pdf"}, "pdf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := scan(t, append(tc.args, "--out", filepath.Join(dir, "out"))...)
			if code == 0 {
				t.Fatalf("exit 0, want failure\nstdout:\n%s", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not name %q:\n%s", tc.want, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "out", "report.json")); err == nil {
				t.Error("a report was written for a failed scan")
			}
		})
	}
}
