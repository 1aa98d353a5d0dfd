package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/pgtest"
)

// TestReplicasOnPostgres runs two orchestrator processes on one PostgreSQL
// database (Debian's server, started for this test), the database URL in
// SECUREAUDIT_DB as a Secret would pass it and one evidence key: an audit
// started on the first is read from the second with its events in one
// sequence, the evidence bundle exported from the second verifies with the
// key, and neither process logs the database password.
func TestReplicasOnPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	name, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECUREAUDIT_DB", srv.URL(name))
	key := filepath.Join(t.TempDir(), "evidence.key")
	args := []string{
		"-rbac-agent", addr(t, "rbac-agent"), "-entra-agent", addr(t, "entra-agent"),
		"-risk-agent", addr(t, "risk-agent"), "-report-agent", addr(t, "report-agent"),
		"-evidence-key", key, "-approve-bundled-scopes=true",
		"-callers", filepath.Join(filepath.Dir(env.stack.PKIDir), "callers.yaml"),
	}
	// One after the other: the first generates the key the second loads.
	first, firstLog := startBinary(t, "orchestrator", args...)
	second, secondLog := startBinary(t, "orchestrator", args...)

	a, err := runUntilDone(t, first)
	if err != nil {
		t.Fatalf("audit on the first replica: %v", err)
	}
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Fatalf("audit %s: %s", a.GetState(), a.GetError())
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(second, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: a.GetId()})
	if err != nil {
		t.Fatalf("GetAudit on the second replica: %v", err)
	}
	if got.GetAudit().GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Errorf("the second replica reads the audit as %s", got.GetAudit().GetState())
	}
	var seqs []uint32
	if err := c.WatchEvents(ctx, a.GetId(), func(e *secureauditv1.AuditEvent) { seqs = append(seqs, e.GetSequence()) }); err != nil {
		t.Fatalf("WatchAudit on the second replica: %v", err)
	}
	for i, s := range seqs {
		if s != uint32(i+1) {
			t.Fatalf("event sequences %v: want 1, 2, 3, ...", seqs)
		}
	}
	if len(seqs) < 4 {
		t.Errorf("%d events, want the queued, stage and final events", len(seqs))
	}

	bundle := filepath.Join(t.TempDir(), "evidence.bundle")
	stdout, stderr, code := cli(t, "evidence", "export", "--orchestrator", second, "--cert-dir", env.stack.PKIDir, "--out", bundle)
	if code != 0 {
		t.Fatalf("export from the second replica: exit %d\n%s%s", code, stdout, stderr)
	}
	pub := publicKey(t, firstLog)
	stdout, stderr, code = cli(t, "evidence", "verify", bundle, "--public-key", pub)
	if code != 0 {
		t.Fatalf("verify with the first replica's key: exit %d\n%s%s", code, stdout, stderr)
	}

	for _, log := range []string{firstLog, secondLog} {
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), srv.Password()) {
			t.Errorf("%s contains the database password", log)
		}
		if !strings.Contains(string(data), `"backend":"postgres"`) || !strings.Contains(string(data), "secureaudit:xxxxx@127.0.0.1") {
			t.Errorf("%s does not name the PostgreSQL database with its password redacted", log)
		}
	}
	if publicKey(t, secondLog) != pub {
		t.Error("the replicas sign with different keys")
	}
}

// publicKey returns the evidence log's public key an orchestrator logged.
func publicKey(t *testing.T, logPath string) string {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), `"public_key":"`)
	if !ok {
		t.Fatalf("%s logs no evidence public key", logPath)
	}
	k, _, _ := strings.Cut(rest, `"`)
	return k
}

// TestKilledReplicaAuditFails: an audit runs on one orchestrator replica
// (held at the assess stage by a stopped risk-agent); a second replica
// starting meanwhile leaves it alone; the first is killed with SIGKILL, and
// once its lease (-audit-lease 2s) expired the second fails the audit naming
// the dead replica; a new audit then runs on the second.
func TestKilledReplicaAuditFails(t *testing.T) {
	srv := pgtest.Start(t)
	name, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECUREAUDIT_DB", srv.URL(name))
	risk, _, _, riskProc := startProcess(t, "risk-agent")
	args := []string{
		"-rbac-agent", addr(t, "rbac-agent"), "-risk-agent", risk, "-report-agent", addr(t, "report-agent"),
		"-evidence-key", filepath.Join(t.TempDir(), "evidence.key"), "-approve-bundled-scopes=true", "-audit-lease", "2s",
		"-callers", filepath.Join(filepath.Dir(env.stack.PKIDir), "callers.yaml"),
	}
	first, firstLog, _, firstProc := startProcess(t, "orchestrator", args...)
	if err := riskProc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer riskProc.Signal(syscall.SIGCONT) //nolint:errcheck // the test's end

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, err := client.Dial(first, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	resp, err := c1.API().StartAudit(ctx, &secureauditv1.StartAuditRequest{SkipDirectory: true})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetAudit().GetId()
	// Wait, through the events, until the first replica is at the assess stage.
	wctx, wcancel := context.WithCancel(ctx)
	err = c1.WatchEvents(wctx, id, func(e *secureauditv1.AuditEvent) {
		if e.GetStage() == secureauditv1.AuditStage_AUDIT_STAGE_ASSESS {
			wcancel()
		}
	})
	wcancel()
	if ctx.Err() != nil {
		t.Fatalf("the audit did not reach the assess stage: %v", err)
	}

	second, _ := startBinary(t, "orchestrator", args...)
	c2, err := client.Dial(second, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got, err := c2.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
	if err != nil || got.GetAudit().GetState() != secureauditv1.AuditState_AUDIT_STATE_RUNNING {
		t.Fatalf("after the second replica started: %s, %v; want RUNNING (a start-up fails nothing another replica holds)", got.GetAudit().GetState(), err)
	}

	replica := loggedReplica(t, firstLog)
	if err := firstProc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// WatchAudit on the second replica ends when the audit does.
	if err := c2.WatchEvents(ctx, id, func(*secureauditv1.AuditEvent) {}); err != nil {
		t.Fatalf("watch on the second replica: %v", err)
	}
	got, err = c2.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAudit().GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED {
		t.Fatalf("audit of the killed replica: %s, want FAILED", got.GetAudit().GetState())
	}
	for _, w := range []string{replica, "stopped renewing its lease", "start a new audit"} {
		if !strings.Contains(got.GetAudit().GetError(), w) {
			t.Errorf("error %q does not say %q", got.GetAudit().GetError(), w)
		}
	}

	if err := riskProc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a, err := runUntilDone(t, second)
	if err != nil || a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Fatalf("the audit again on the second replica: %v, %v; want SUCCEEDED", a.GetState(), err)
	}
}

// loggedReplica returns the replica name an orchestrator logged at start.
func loggedReplica(t *testing.T, logPath string) string {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	_, line, ok := strings.Cut(string(data), `"msg":"replica"`)
	if ok {
		_, rest, found := strings.Cut(line, `"name":"`)
		if n, _, _ := strings.Cut(rest, `"`); found && n != "" {
			return n
		}
	}
	t.Fatalf("%s logs no replica name", logPath)
	return ""
}
