package e2e

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpAuditStop runs `secureaudit up`, audits through `secureaudit audit`
// from another process, and stops everything with Ctrl-C (SIGINT).
func TestUpAuditStop(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	up := exec.Command(filepath.Join(env.binDir, "secureaudit"), "up",
		"--snapshot", filepath.Join(env.root, "examples", "cluster"),
		"--directory", filepath.Join(env.root, "examples", "directory.json"),
		"--state-dir", state)
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	up.Stderr = os.Stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		if up.ProcessState == nil {
			_ = up.Process.Kill()
		}
	})

	// Read the printed addresses until up says it is ready.
	addrs := map[string]string{}
	var registered string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "registered cluster ") {
			registered = line
		}
		if f := strings.Fields(line); len(f) >= 2 && (strings.HasSuffix(f[0], "-agent") || f[0] == "orchestrator") {
			addrs[f[0]] = f[1]
		}
		if strings.Contains(line, "Ctrl-C stops the services") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
		done <- up.Wait()
	}()
	for _, name := range []string{"rbac-agent", "entra-agent", "risk-agent", "report-agent", "orchestrator"} {
		if addrs[name] == "" {
			t.Fatalf("up printed no address for %s (got %v)", name, addrs)
		}
	}
	for _, f := range []string{"pki/ca.crt", "pki/cli.key", "pki/orchestrator.key"} {
		info, err := os.Stat(filepath.Join(state, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".key") && info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, info.Mode().Perm())
		}
	}

	out := filepath.Join(dir, "out")
	audit := exec.Command(filepath.Join(env.binDir, "secureaudit"), "audit", "--state-dir", state, "--out", out)
	if b, err := audit.CombinedOutput(); err != nil {
		t.Fatalf("audit: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
		t.Fatal(err)
	}
	// up registered the one local cluster (the snapshot's base name), and
	// the audit is its last.
	if want := "registered cluster cluster (rbac-agent at " + addrs["rbac-agent"] + ")"; registered != want {
		t.Errorf("up printed %q, want %q", registered, want)
	}
	get := exec.Command(filepath.Join(env.binDir, "secureaudit"), "cluster", "get", "cluster", "--state-dir", state)
	b, err := get.CombinedOutput()
	if err != nil {
		t.Fatalf("cluster get: %v\n%s", err, b)
	}
	for _, want := range []string{addrs["rbac-agent"], "environment=local", "SUCCEEDED"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("cluster get cluster does not show %q:\n%s", want, b)
		}
	}

	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up exited with %v after Ctrl-C", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up did not stop within 30s of Ctrl-C")
	}
	for name, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens on %s after up stopped", name, addr)
		}
	}
}
