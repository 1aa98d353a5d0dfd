package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
