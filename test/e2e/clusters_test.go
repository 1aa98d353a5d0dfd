package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFleetOfRegisteredClusters runs an orchestrator with no default
// rbac-agent and two real rbac-agent processes serving the example as
// clusters aks-east and aks-west, all over real mTLS. Clusters are
// registered with `secureaudit cluster add`: aks-east correctly, aks-north
// at aks-east's agent by mistake. The audit of aks-east collects from its
// own agent and is filed under its name; the audit of aks-north fails
// naming both clusters and files no report; an agent address registered
// with another workload's SPIFFE ID is refused at the handshake.
func TestFleetOfRegisteredClusters(t *testing.T) {
	snapshot := filepath.Join(env.root, "examples", "cluster")
	east, _ := startBinary(t, "rbac-agent", "-snapshot", snapshot, "-cluster", "aks-east")
	west, _ := startBinary(t, "rbac-agent", "-snapshot", snapshot, "-cluster", "aks-west")
	orch := startOrchestrator(t,
		"-rbac-agent", "",
		"-risk-agent", addr(t, "risk-agent"),
		"-report-agent", addr(t, "report-agent"))
	conn := []string{"--orchestrator", orch, "--cert-dir", env.stack.PKIDir}
	run := func(wantCode int, args ...string) string {
		t.Helper()
		stdout, stderr, code := cli(t, append(args, conn...)...)
		if code != wantCode {
			t.Fatalf("secureaudit %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout + stderr
	}

	run(0, "cluster", "add", "aks-east", "--agent", east, "--environment", "prod", "--owner", "platform-team", "--criticality", "high")
	run(0, "cluster", "add", "aks-west", "--agent", west, "--environment", "dev")
	run(0, "cluster", "add", "aks-north", "--agent", east, "--environment", "prod")
	run(0, "cluster", "add", "aks-spoof", "--agent", west, "--agent-id", "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent")
	out := run(1, "cluster", "add", "aks-east", "--agent", west)
	if !strings.Contains(out, "registered already") {
		t.Errorf("second add of aks-east: %s", out)
	}
	out = run(0, "cluster", "list", "--label", "environment=prod")
	if !strings.Contains(out, "aks-east") || !strings.Contains(out, "aks-north") || strings.Contains(out, "aks-west") {
		t.Errorf("clusters labelled environment=prod:\n%s", out)
	}

	dir := t.TempDir()
	out = run(0, "audit", "--cluster", "aks-east", "--format", "json", "--out", dir, "--skip-directory")
	if !strings.Contains(out, "of cluster aks-east") {
		t.Errorf("audit of aks-east:\n%s", out)
	}
	if r := readReport(t, filepath.Join(dir, "report.json")); r.GetCluster() != "aks-east" {
		t.Errorf("report of aks-east names cluster %q", r.GetCluster())
	}
	out = run(0, "audit", "--cluster", "aks-west", "--format", "json", "--out", t.TempDir(), "--skip-directory")
	if !strings.Contains(out, "of cluster aks-west") {
		t.Errorf("audit of aks-west:\n%s", out)
	}

	// Mis-registered: the audit fails naming both clusters; no report.
	northDir := t.TempDir()
	_, stderr, code := cli(t, append([]string{"audit", "--cluster", "aks-north", "--format", "json", "--out", northDir, "--skip-directory"}, conn...)...)
	if code == 0 {
		t.Fatal("the audit of the mis-registered aks-north succeeded")
	}
	for _, want := range []string{`registered for cluster "aks-north" serves cluster "aks-east"`, east} {
		if !strings.Contains(stderr, want) {
			t.Errorf("aks-north's failure does not say %q:\n%s", want, stderr)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(northDir, "report*")); len(matches) > 0 {
		t.Errorf("reports written for the mis-registered cluster: %v", matches)
	}
	// The wrong SPIFFE ID: the handshake refuses aks-west's agent.
	_, stderr, code = cli(t, append([]string{"audit", "--cluster", "aks-spoof", "--format", "json", "--out", t.TempDir(), "--skip-directory"}, conn...)...)
	if code == 0 || !strings.Contains(stderr, "rbac-agent") {
		t.Errorf("audit of aks-spoof: exit %d, stderr:\n%s", code, stderr)
	}
	// No default rbac-agent: an unregistered cluster is refused at once.
	_, stderr, code = cli(t, append([]string{"audit", "--cluster", "aks-south", "--out", t.TempDir()}, conn...)...)
	if code == 0 || !strings.Contains(stderr, "cluster aks-south is not registered") {
		t.Errorf("audit of unregistered aks-south: exit %d, stderr:\n%s", code, stderr)
	}

	// Per cluster: the last audit, and the audits listed by cluster.
	out = run(0, "cluster", "get", "aks-east")
	if !strings.Contains(out, "SUCCEEDED") || !strings.Contains(out, "aks-east") || !strings.Contains(out, "criticality=high") {
		t.Errorf("cluster get aks-east:\n%s", out)
	}
	out = run(0, "list", "--cluster", "aks-north")
	if !strings.Contains(out, "FAILED") || strings.Contains(out, "SUCCEEDED") {
		t.Errorf("audits of aks-north:\n%s", out)
	}
	// The fleet view of the prod clusters: aks-east's first audit with its
	// counts and worst findings; aks-north's failure, named.
	out = run(0, "fleet", "--label", "environment=prod", "--worst", "3")
	t.Logf("fleet:\n%s", out)
	var eastRow, northRow string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "aks-east "):
			eastRow = line
		case strings.HasPrefix(line, "aks-north "):
			northRow = line
		}
	}
	if f := strings.Fields(eastRow); len(f) < 9 || f[3] != "SUCCEEDED" || f[5] != "first" || f[7] != "0" {
		t.Errorf("fleet row of aks-east %q (fields: name labels last state counts new resolved failed overdue)\n%s", eastRow, out)
	}
	if f := strings.Fields(northRow); len(f) < 9 || f[3] != "FAILED" || f[4] != "-" || f[7] != "1" {
		t.Errorf("fleet row of aks-north %q\n%s", northRow, out)
	}
	if strings.Contains(out, "aks-west") || !strings.Contains(out, `aks-north: audit`) || !strings.Contains(out, `serves cluster "aks-east"`) {
		t.Errorf("fleet --label environment=prod:\n%s", out)
	}
	if n := strings.Count(out, "\n  aks-east  "); n != 3 {
		t.Errorf("aks-east's worst findings listed: %d, want 3\n%s", n, out)
	}

	out = run(0, "cluster", "remove", "aks-north")
	if !strings.Contains(out, "removed cluster aks-north") {
		t.Errorf("remove: %s", out)
	}
	out = run(0, "cluster", "list")
	if strings.Contains(out, "aks-north") || !strings.Contains(out, "aks-west") {
		t.Errorf("clusters after removing aks-north:\n%s", out)
	}
}
