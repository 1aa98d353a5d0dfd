package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/store"
	"secureaudit.dev/services/risk-agent/synth"
)

// fleetOrchestrator starts one orchestrator replica for a fleet on a new
// PostgreSQL database of srv (no default rbac-agent, schedules checked hourly) and
// returns its address, the database's URL and its log's path.
func fleetOrchestrator(b testing.TB, srv *pgtest.Server, extra ...string) (addr0, dbURL, logPath string) {
	b.Helper()
	name, err := srv.CreateDatabase()
	if err != nil {
		b.Fatal(err)
	}
	dbURL = srv.URL(name)
	b.Setenv("SECUREAUDIT_DB", dbURL)
	addr0, logPath = startBinary(b, "orchestrator", append([]string{
		"-rbac-agent", "", "-risk-agent", addr(b, "risk-agent"), "-report-agent", addr(b, "report-agent"),
		"-evidence-key", filepath.Join(b.TempDir(), "evidence.key"), "-approve-bundled-scopes=true", "-schedule-tick", "1h",
		"-callers", filepath.Join(filepath.Dir(env.stack.PKIDir), "callers.yaml"),
	}, extra...)...)
	return addr0, dbURL, logPath
}

// databaseSize is pg_database_size of the database at url, in bytes, and
// pg_total_relation_size (with indexes and TOAST) of each of its tables.
func databaseSize(ctx context.Context, b *testing.B, url string) (int64, map[string]int64) {
	b.Helper()
	db, err := storage.Open(ctx, url, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT tablename, pg_total_relation_size(quote_ident(tablename)) FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	tables := map[string]int64{}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			b.Fatal(err)
		}
		tables[name] = size
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n, tables
}

// BenchmarkFleetAudits100x5k audits a fleet of 100 registered clusters of
// about 5,000 objects each (the risk-agent's synthetic clusters, a seed
// per cluster, as `kubectl get -o json` Lists), each served by its own
// rbac-agent process, through one orchestrator replica on PostgreSQL
// (-audit-workers 4) with the shared stack's risk-agent and report-agent.
// One iteration starts an audit of every cluster, as a schedule does (every
// report format rendered and stored), and waits until all are done. It
// reports audits per minute and the database's growth per audit.
//
//	make build && cd test/e2e && SECUREAUDIT_BIN_DIR=$PWD/../../bin go test -run '^$' -bench FleetAudits100x5k -benchtime 1x -timeout 30m
func BenchmarkFleetAudits100x5k(b *testing.B) {
	const clusters, objects = 100, 5_000
	srv := pgtest.Start(b)
	orch, dbURL, _ := fleetOrchestrator(b, srv, "-audit-workers", "4")
	ctx := context.Background()
	c, err := client.Dial(orch, env.stack.PKIDir)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dir := b.TempDir()
	names := make([]string, clusters)
	total := 0
	for i := range names {
		names[i] = fmt.Sprintf("aks-bench-%03d", i)
		chunk := synth.Cluster(uint64(i+1), objects)
		total += synth.Objects(chunk)
		data, err := json.Marshal(kubeList(chunk))
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, names[i]+".json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		agent, _ := startBinary(b, "rbac-agent", "-snapshot", path, "-cluster", names[i])
		if _, err := c.Clusters().RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: &secureauditv1.Cluster{
			Name: names[i], AgentAddress: agent, AgentSpiffeId: identity.ID(identity.RBACAgent).String(),
		}}); err != nil {
			b.Fatalf("register %s: %v", names[i], err)
		}
	}
	before, beforeTables := databaseSize(ctx, b, dbURL)
	var elapsed time.Duration
	audits := 0
	b.ResetTimer()
	for range b.N {
		began := time.Now()
		ids := make([]string, 0, clusters)
		for _, n := range names {
			resp, err := c.API().StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: n, SkipDirectory: true})
			if err != nil {
				b.Fatalf("start audit of %s: %v", n, err)
			}
			ids = append(ids, resp.GetAudit().GetId())
		}
		for _, id := range ids {
			if err := c.WatchEvents(ctx, id, func(*secureauditv1.AuditEvent) {}); err != nil {
				b.Fatalf("watch audit %s: %v", id, err)
			}
			got, err := c.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
			if err != nil {
				b.Fatal(err)
			}
			if got.GetAudit().GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				b.Fatalf("audit %s of %s: %s %s", id, got.GetAudit().GetCluster(), got.GetAudit().GetState(), got.GetAudit().GetError())
			}
		}
		elapsed += time.Since(began)
		audits += len(ids)
	}
	b.StopTimer()
	after, afterTables := databaseSize(ctx, b, dbURL)
	for name, size := range afterTables {
		if grown := size - beforeTables[name]; grown > 0 {
			b.Logf("table %s: %d bytes per audit", name, grown/int64(audits))
		}
	}
	b.ReportMetric(float64(total)/clusters, "objects/cluster")
	b.ReportMetric(float64(audits)/elapsed.Minutes(), "audits/min")
	b.ReportMetric(float64(after-before)/float64(audits), "store-bytes/audit")
}

// BenchmarkFleetView10k runs `secureaudit fleet` end to end (the CLI
// process: start, mTLS to the orchestrator, GetFleetSummary, the table
// printed) against one orchestrator replica on PostgreSQL holding 100
// registered clusters with 100 audits each (10,000 audits, every tenth
// failed). The findings are a real audit's: the example cluster audited
// through its rbac-agent, stored again as the newest success of every
// cluster (about 80 findings each).
//
//	make build && cd test/e2e && SECUREAUDIT_BIN_DIR=$PWD/../../bin go test -run '^$' -bench FleetView10k -benchtime 20x
func BenchmarkFleetView10k(b *testing.B) {
	const clusters = 100
	orch, _, n := fleet10k(b)
	cmd := func(args ...string) string {
		out, err := exec.Command(filepath.Join(env.binDir, "secureaudit"), append(args, "--orchestrator", orch, "--cert-dir", env.stack.PKIDir)...).CombinedOutput()
		if err != nil {
			b.Fatalf("secureaudit %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The same process and connection with the smallest read there is, to
	// tell the CLI's start and handshake from the summary.
	var baseline time.Duration
	cmd("fleet") // warm: the first summary reads the tables from disk
	b.ResetTimer()
	for range b.N {
		if out := cmd("fleet"); !strings.Contains(out, fmt.Sprintf("%d clusters", clusters)) {
			b.Fatalf("secureaudit fleet:\n%s", out)
		}
		b.StopTimer()
		t0 := time.Now()
		cmd("cluster", "get", "aks-bench-001")
		baseline += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "audits")
	b.ReportMetric(float64(baseline.Milliseconds())/float64(b.N), "cluster-get-ms")
}

// BenchmarkFleetReport10k runs `secureaudit fleet --format md,html --out
// DIR` end to end (the CLI process, GetFleetReport over mTLS, the
// orchestrator gathering the view with each cluster's trend and streaming
// it to the report-agent process in batches, Markdown and HTML rendered and
// streamed back in chunks, the CLI writing each file as its chunks arrive)
// against the fleet of BenchmarkFleetView10k: 100 clusters with 100 audits
// each. "default" asks for the defaults (5 worst findings, a trend of 10);
// "worst50-trend50" for the most the contract allows per cluster. It
// reports the documents' sizes, the batches the fleet travelled in (from
// the orchestrator's log) and the load average around the run.
//
//	make build && cd test/e2e && SECUREAUDIT_BIN_DIR=$PWD/../../bin go test -run '^$' -bench FleetReport10k -benchtime 10x
func BenchmarkFleetReport10k(b *testing.B) {
	const clusters = 100
	orch, orchLog, n := fleet10k(b)
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"worst50-trend50", []string{"--worst", "50", "--trend", "50"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			args := append([]string{"fleet", "--format", "md,html", "--out", dir, "--orchestrator", orch, "--cert-dir", env.stack.PKIDir}, bc.args...)
			run := func() {
				if out, err := exec.Command(filepath.Join(env.binDir, "secureaudit"), args...).CombinedOutput(); err != nil {
					b.Fatalf("secureaudit %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
			run() // warm: the first view reads the tables from disk
			before := loadAverage(b)
			b.ResetTimer()
			for range b.N {
				run()
			}
			b.StopTimer()
			after := loadAverage(b)
			md, err := os.ReadFile(filepath.Join(dir, "fleet.md"))
			if err != nil {
				b.Fatal(err)
			}
			html, err := os.ReadFile(filepath.Join(dir, "fleet.html"))
			if err != nil {
				b.Fatal(err)
			}
			// Whole: every cluster in both documents, the HTML closed.
			for i := range clusters {
				name := fmt.Sprintf("aks-bench-%03d", i)
				if !strings.Contains(string(md), "### "+name+"\n") || !strings.Contains(string(html), `id="cluster-`+name+`"`) {
					b.Fatalf("the fleet report lacks %s", name)
				}
			}
			if !strings.HasSuffix(strings.TrimSpace(string(html)), "</html>") {
				b.Fatalf("fleet.html does not end with </html>")
			}
			b.ReportMetric(float64(n), "audits")
			b.ReportMetric(float64(len(md))/1024, "md-KiB")
			b.ReportMetric(float64(len(html))/1024, "html-KiB")
			batches, sent := lastBatches(b, orchLog)
			b.ReportMetric(float64(batches), "batches")
			b.ReportMetric(float64(sent)/1024, "view-KiB")
			b.ReportMetric(before, "load1-before")
			b.ReportMetric(after, "load1-after")
		})
	}
}

// loadAverage is the one-minute load average (/proc/loadavg).
func loadAverage(b *testing.B) float64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	var load float64
	if _, err := fmt.Sscan(string(raw), &load); err != nil {
		b.Fatalf("/proc/loadavg %q: %v", raw, err)
	}
	return load
}

// lastBatches is the number of batches the orchestrator's newest fleet
// report travelled to the report-agent in, and their bytes, from its log.
func lastBatches(b testing.TB, logPath string) (batches, bytes int) {
	b.Helper()
	raw, err := os.ReadFile(logPath)
	if err != nil {
		b.Fatal(err)
	}
	batches = -1
	for _, line := range strings.Split(string(raw), "\n") {
		var entry struct {
			Msg     string `json:"msg"`
			Batches int    `json:"batches"`
			Bytes   int    `json:"bytes"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "fleet report sent to the report-agent" {
			batches, bytes = entry.Batches, entry.Bytes
		}
	}
	if batches < 1 {
		b.Fatalf("the orchestrator's log %s names no fleet report sent", logPath)
	}
	return batches, bytes
}

// fleet10k starts one orchestrator replica on PostgreSQL holding 100
// registered clusters with 100 audits each (10,000 audits, every tenth
// failed; the newest success of each holds a real audit's findings, the
// example cluster's), and returns its address, its log's path and the
// number of audits.
func fleet10k(b *testing.B) (orch, orchLog string, audits int) {
	b.Helper()
	const clusters, perCluster = 100, 100
	srv := pgtest.Start(b)
	orch, dbURL, orchLog := fleetOrchestrator(b, srv)
	ctx := context.Background()
	c, err := client.Dial(orch, env.stack.PKIDir)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	// One real audit of the example cluster, for its findings.
	agent, _ := startBinary(b, "rbac-agent", "-snapshot", filepath.Join(env.root, "examples", "cluster"), "-cluster", "aks-bench-000")
	register := func(i int, name, agent string) {
		if _, err := c.Clusters().RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: &secureauditv1.Cluster{
			Name: name, AgentAddress: agent, AgentSpiffeId: identity.ID(identity.RBACAgent).String(),
			Labels: map[string]string{"environment": []string{"prod", "dev"}[i%2]}, Schedule: "@daily",
		}}); err != nil {
			b.Fatalf("register %s: %v", name, err)
		}
	}
	register(0, "aks-bench-000", agent)
	resp, err := c.API().StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: "aks-bench-000", SkipDirectory: true})
	if err != nil {
		b.Fatal(err)
	}
	real := resp.GetAudit().GetId()
	if err := c.WatchEvents(ctx, real, func(*secureauditv1.AuditEvent) {}); err != nil {
		b.Fatal(err)
	}
	db, err := storage.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st := store.New(db)
	findings, err := st.Findings(ctx, real)
	if err != nil || len(findings) == 0 {
		b.Fatalf("findings of the real audit %s: %d, %v", real, len(findings), err)
	}

	// 10,000 audits in all: the real one and 9,999 stored.
	start := time.Now().Add(-perCluster * clusters * time.Minute)
	n := 0
	for i := range clusters {
		name := fmt.Sprintf("aks-bench-%03d", i)
		if i > 0 {
			register(i, name, agent)
		}
		var prev *secureauditv1.Audit
		for j := range perCluster {
			if i == 0 && j == perCluster-1 {
				break // the real audit is aks-bench-000's newest
			}
			n++
			a := &secureauditv1.Audit{
				Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: name,
				State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, SkipDirectory: true,
				Summary:   &secureauditv1.SeverityCounts{Critical: 20, High: 30, Medium: 20, Low: 5},
				CreatedAt: timestamppb.New(start.Add(time.Duration(n) * time.Minute)), FinishedAt: timestamppb.New(start.Add(time.Duration(n)*time.Minute + time.Second)),
			}
			if j%10 == 9 {
				a.State, a.Summary, a.Error = secureauditv1.AuditState_AUDIT_STATE_FAILED, nil, "the rbac-agent at aks.internal:8441 did not answer within the collect budget"
			}
			if err := st.CreateAudit(ctx, a); err != nil {
				b.Fatal(err)
			}
			if j == perCluster-2 && i > 0 { // the newest success: the real findings
				input := &secureauditv1.Report{AuditId: a.GetId(), Cluster: name, History: &secureauditv1.AuditHistory{
					PreviousAuditId: prev.GetId(), PreviousGeneratedAt: prev.GetCreatedAt(), NewFindingIds: []string{findings[0].GetId()}, Resolved: findings[1:3],
				}}
				if err := st.SaveResult(ctx, a.GetId(), findings, input, nil); err != nil {
					b.Fatal(err)
				}
			}
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				prev = a
			}
		}
	}
	return orch, orchLog, n + 1
}
