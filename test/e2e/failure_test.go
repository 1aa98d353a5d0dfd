package e2e

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// startOrchestrator runs a second orchestrator process with the shared PKI
// and the local stack's development caller policy, wired to the given agent
// addresses, and returns its address.
func startOrchestrator(t *testing.T, args ...string) string {
	t.Helper()
	addr, _ := startBinary(t, "orchestrator", append([]string{
		"-db", filepath.Join(t.TempDir(), "db.sqlite"), "-approve-bundled-scopes=true",
		"-callers", filepath.Join(filepath.Dir(env.stack.PKIDir), "callers.yaml"),
	}, args...)...)
	return addr
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// runUntilDone starts an audit on the orchestrator at addr and waits for it to end.
func runUntilDone(t *testing.T, addr string) (*secureauditv1.Audit, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(addr, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The new orchestrator may still be starting: retry StartAudit on Unavailable
	// through gRPC's wait-for-ready instead of sleeping.
	res, err := c.Run(ctx, client.Options{OutDir: t.TempDir(), Formats: client.Formats, WaitForReady: true})
	if res == nil {
		return nil, err
	}
	return res.Audit, err
}

func TestUnreachableAgentFailsTheAuditClearly(t *testing.T) {
	dead := deadAddr(t)
	orch := startOrchestrator(t,
		"-rbac-agent", addr(t, "rbac-agent"),
		"-risk-agent", dead,
		"-report-agent", addr(t, "report-agent"))
	a, err := runUntilDone(t, orch)
	if err == nil {
		t.Fatal("audit succeeded without a risk-agent")
	}
	if a == nil || a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED {
		t.Fatalf("audit %v, err %v; want FAILED", a, err)
	}
	if !strings.Contains(a.GetError(), "risk-agent") || !strings.Contains(a.GetError(), "Unavailable") {
		t.Errorf("error %q does not name the risk-agent and its unavailability", a.GetError())
	}
}

func TestUnreachableEntraAgentAuditsWithoutIdentityData(t *testing.T) {
	orch := startOrchestrator(t,
		"-rbac-agent", addr(t, "rbac-agent"),
		"-entra-agent", deadAddr(t),
		"-risk-agent", addr(t, "risk-agent"),
		"-report-agent", addr(t, "report-agent"))
	a, err := runUntilDone(t, orch)
	if err != nil {
		t.Fatalf("audit failed: %v", err)
	}
	if a.GetDirectoryAvailable() {
		t.Error("directory_available = true with an unreachable entra-agent")
	}
}
