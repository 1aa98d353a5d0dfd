package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/services/orchestrator/cluster"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/store"
	"secureaudit.dev/services/report-agent/render"
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

// TestFleetReportOverOneMessage renders the fleet report of a fleet larger
// than a message may carry through the real processes: 2,600 registered
// clusters (stored directly in the orchestrator's PostgreSQL database,
// never audited, each with 32 labels, 31 of 250 characters: a 21 MB view).
// GetFleetSummary (one response) refuses the view naming its size, and
// `secureaudit fleet` (StreamFleetSummary) prints it whole, in a table and
// as JSON; `fleet --format md,html` travels to the report-agent in batches
// (the orchestrator's log counts them) and both documents come back whole.
// For three of the clusters (a label) the Markdown is the one the renderer
// writes from the fleet view in one piece, the unchunked path.
func TestFleetReportOverOneMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the orchestrator")
	}
	const clusters = 2600
	srv := pgtest.Start(t)
	orch, dbURL, orchLog := fleetOrchestrator(t, srv)
	ctx := context.Background()
	db, err := storage.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := store.New(db)
	for i := range clusters {
		name := fmt.Sprintf("aks-big-%04d", i)
		labels := map[string]string{"group": "large"}
		if i < 3 {
			labels["group"] = "small"
		}
		for k := range 31 {
			labels[fmt.Sprintf("label-%02d", k)] = strings.Repeat(string(rune('a'+k%26)), 250)
		}
		if err := st.CreateCluster(ctx, &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441",
			AgentSpiffeId: identity.ID(identity.RBACAgent).String(), Labels: labels}); err != nil {
			t.Fatalf("store cluster %s: %v", name, err)
		}
	}
	conn := []string{"--orchestrator", orch, "--cert-dir", env.stack.PKIDir}
	c, err := client.Dial(orch, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// GetFleetSummary's one message cannot carry the view: refused, naming
	// its size. `secureaudit fleet` streams it (StreamFleetSummary).
	if _, err := c.Clusters().GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{}); status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(status.Convert(err).Message(), fmt.Sprintf("the fleet view of %d clusters would be a message of", clusters)) {
		t.Fatalf("GetFleetSummary of %d clusters: %v, want ResourceExhausted", clusters, err)
	}
	stdout, stderr, code := cli(t, append([]string{"fleet"}, conn...)...)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d clusters", clusters)) || !strings.Contains(stdout, "aks-big-2599") {
		t.Fatalf("fleet (the view) of %d clusters: exit %d\nstderr:\n%s\nstdout (start):\n%.2000s", clusters, code, stderr, stdout)
	}
	stdout, stderr, code = cli(t, append([]string{"fleet", "-o", "json"}, conn...)...)
	if code != 0 {
		t.Fatalf("fleet -o json: exit %d\n%s", code, stderr)
	}
	var view struct {
		Clusters []json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(stdout), &view); err != nil || len(view.Clusters) != clusters {
		t.Errorf("fleet -o json: %d clusters, %v", len(view.Clusters), err)
	}

	dir := filepath.Join(t.TempDir(), "fleet")
	if stdout, stderr, code := cli(t, append([]string{"fleet", "--format", "md,html", "--out", dir}, conn...)...); code != 0 {
		t.Fatalf("fleet --format md,html of %d clusters: exit %d\nstdout:\n%s\nstderr:\n%s", clusters, code, stdout, stderr)
	}
	batches, sent := lastBatches(t, orchLog)
	if batches < 5 || sent <= rpc.MaxMessageSize {
		t.Errorf("the fleet report travelled in %d batches of %d bytes in all, want 5 or more (over %d bytes in batches of at most 4 MiB)", batches, sent, rpc.MaxMessageSize)
	}
	t.Logf("the fleet report travelled to the report-agent in %d batches, %d bytes", batches, sent)
	md, err := os.ReadFile(filepath.Join(dir, "fleet.md"))
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "fleet.html"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fleet.md %d bytes, fleet.html %d bytes", len(md), len(html))
	if !strings.Contains(string(md), fmt.Sprintf("for all registered clusters: %d clusters.", clusters)) {
		t.Errorf("fleet.md does not count %d clusters", clusters)
	}
	var names []string
	for i := range clusters {
		names = append(names, fmt.Sprintf("aks-big-%04d", i))
	}
	for doc, re := range map[string]*regexp.Regexp{
		"fleet.md": regexp.MustCompile(`(?m)^### (aks-big-\d{4})$`), "fleet.html": regexp.MustCompile(`id="cluster-(aks-big-\d{4})"`),
	} {
		text := md
		if doc == "fleet.html" {
			text = html
		}
		var got []string
		for _, m := range re.FindAllSubmatch(text, -1) {
			got = append(got, string(m[1]))
		}
		if !slices.Equal(got, names) {
			t.Errorf("%s has sections for %d clusters, want the %d in order", doc, len(got), clusters)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(string(html)), "</html>") {
		t.Errorf("fleet.html does not end with </html>")
	}

	// Three clusters: the streamed Markdown is the renderer's of the whole
	// view (the times of the two views aside).
	small := map[string]string{"group": "small"}
	dir = filepath.Join(t.TempDir(), "small")
	if stdout, stderr, code := cli(t, append([]string{"fleet", "--label", "group=small", "--format", "md", "--out", dir}, conn...)...); code != 0 {
		t.Fatalf("fleet --label group=small: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, "fleet.md"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Clusters().GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{Labels: small, Trend: 10})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := render.WriteFleet(&want, secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, cluster.FleetReport(sum, small, 10)); err != nil {
		t.Fatal(err)
	}
	generated := regexp.MustCompile(`Generated \S+ for`)
	if g, w := generated.ReplaceAllString(string(got), "Generated T for"), generated.ReplaceAllString(want.String(), "Generated T for"); g != w {
		t.Errorf("streamed Markdown of three clusters differs from the renderer's of the whole view:\n--- streamed\n%s\n--- whole\n%s", g, w)
	}
	if !strings.Contains(string(got), "### aks-big-0002\n") || strings.Contains(string(got), "aks-big-0003") {
		t.Errorf("fleet.md of group=small:\n%s", got)
	}
}
