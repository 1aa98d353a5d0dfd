package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFleetReportCommand writes the fleet report with `secureaudit fleet
// --format md,html --out DIR` from an orchestrator with two registered
// clusters served by real rbac-agent processes: the report-agent renders
// it (over mTLS, the orchestrator calling RenderFleet), the label filter
// keeps the prod cluster, and its trend lists its audits oldest first.
func TestFleetReportCommand(t *testing.T) {
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
	run(0, "cluster", "add", "aks-east", "--agent", east, "--environment", "prod", "--owner", "platform-team")
	run(0, "cluster", "add", "aks-west", "--agent", west, "--environment", "dev")
	for _, c := range []string{"aks-east", "aks-east", "aks-west"} {
		run(0, "audit", "--cluster", c, "--format", "json", "--out", t.TempDir(), "--skip-directory")
	}

	dir := filepath.Join(t.TempDir(), "fleet")
	out := run(0, "fleet", "--label", "environment=prod", "--format", "md,html", "--out", dir)
	for _, f := range []string{"fleet.md", "fleet.html"} {
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("fleet --format md,html does not say it wrote %s:\n%s", f, out)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "fleet.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	t.Logf("fleet.md:\n%s", doc)
	for _, want := range []string{
		"# Fleet report",
		"for clusters labelled environment=prod: 1 cluster.",
		"### aks-east",
		"Trend (newest 2 audits, oldest first):",
		// Not always "0 new, 0 changed, 0 resolved": an audit's creation
		// time is kept to the second and the two audits of aks-east start
		// within one, so the store orders them by ID and the "last" one may
		// be the first, which has no audit before it.
		"- Since the audit before: ",
		"| **Total** |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("fleet.md lacks %q", want)
		}
	}
	if strings.Contains(doc, "aks-west") {
		t.Errorf("fleet.md of environment=prod names aks-west")
	}
	html, err := os.ReadFile(filepath.Join(dir, "fleet.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"default-src 'none'", `id="cluster-aks-east"`, `<svg class="trend"`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("fleet.html lacks %q", want)
		}
	}

	// The summary with the trend: both audits of aks-east, oldest first.
	out = run(0, "fleet", "--label", "environment=prod", "--trend", "5")
	if !strings.Contains(out, "\ntrend (") || !strings.Contains(out, "\n  aks-east  23/35/18/3/0 23/35/18/3/0\n") {
		t.Errorf("fleet --trend 5:\n%s", out)
	}

	// JSON is not a fleet report format: a usage error before any call.
	if _, stderr, code := cli(t, append([]string{"fleet", "--format", "json", "--out", dir}, conn...)...); code != 2 || !strings.Contains(stderr, `unknown fleet report format "json"`) {
		t.Errorf("fleet --format json: exit %d, stderr:\n%s", code, stderr)
	}
}
