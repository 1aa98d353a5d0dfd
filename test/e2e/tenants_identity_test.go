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
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
)

// e2eFabrikamAgent is the workload name, and so the SPIFFE ID, of the
// entra-agent of TestTenantEntraAgentOwnIdentity: an identity of its own
// for tenant B's agent, as the README advises.
const e2eFabrikamAgent = "entra-agent-fabrikam"

// TestTenantEntraAgentOwnIdentity runs tenant B's entra-agent under a
// SPIFFE ID of its own (spiffe://secureaudit.local/ns/secureaudit/sa/
// entra-agent-fabrikam: a certificate the test issues from a CA of its
// own, which every process of the test trusts), configured with
// -tenant-entra-agent B=HOST:PORT,ID. The audit of a cluster registered
// with tenant B is resolved by that agent: its report names tenant B's
// people. A second orchestrator configured with the same agent and the
// default entra-agent's ID, not the agent's, fails the audit at the
// handshake, the error naming the ID it wanted and the one the agent
// presented, and files no report under the cluster.
func TestTenantEntraAgentOwnIdentity(t *testing.T) {
	certs := filepath.Join(t.TempDir(), "pki")
	ca, err := pki.WriteAll(certs, identity.Workloads, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Tenant B's agent: its certificate names e2eFabrikamAgent, in the
	// files an entra-agent reads from its -cert-dir.
	fabrikam := filepath.Join(t.TempDir(), "pki-fabrikam")
	if err := os.Mkdir(fabrikam, 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(e2eFabrikamAgent, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	own := identity.ID(e2eFabrikamAgent).String()
	defaultID := identity.ID(identity.EntraAgent).String()
	files := pki.Paths(fabrikam, identity.EntraAgent)
	for path, data := range map[string][]byte{files.Cert: certPEM, files.Key: keyPEM, files.CA: ca.CertPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Every other process of the test holds a certificate of the test's CA
	// (a later -cert-dir replaces the shared stack's).
	dirB := tenantBDirectory(t, filepath.Join(env.root, "examples", "directory.json"))
	entraB, _ := startBinary(t, "entra-agent", "-cert-dir", fabrikam, "-spiffe-id", own, "-directory", dirB)
	rbac, _ := startBinary(t, "rbac-agent", "-cert-dir", certs, "-snapshot", filepath.Join(env.root, "examples", "cluster"), "-cluster", "aks-fabrikam")
	risk, _ := startBinary(t, "risk-agent", "-cert-dir", certs)
	report, _ := startBinary(t, "report-agent", "-cert-dir", certs)
	orchestrator := func(entraID string) []string {
		t.Helper()
		orch := startOrchestrator(t, "-cert-dir", certs,
			"-rbac-agent", "",
			"-tenant-entra-agent", e2eTenantB+"="+entraB+","+entraID,
			"-risk-agent", risk, "-report-agent", report)
		conn := []string{"--orchestrator", orch, "--cert-dir", certs}
		if stdout, stderr, code := cli(t, append([]string{"cluster", "add", "aks-fabrikam", "--agent", rbac, "--tenant", e2eTenantB}, conn...)...); code != 0 {
			t.Fatalf("cluster add aks-fabrikam: exit %d\n%s%s", code, stdout, stderr)
		}
		return conn
	}

	// The agent's own ID: resolved by tenant B's directory.
	conn := orchestrator(own)
	dir := t.TempDir()
	stdout, stderr, code := cli(t, append([]string{"audit", "--cluster", "aks-fabrikam", "--format", "json", "--out", dir}, conn...)...)
	if code != 0 {
		t.Fatalf("audit of aks-fabrikam through the agent with its own ID: exit %d\n%s%s", code, stdout, stderr)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if r.GetCluster() != "aks-fabrikam" || !r.GetDirectoryAvailable() {
		t.Errorf("report: cluster %q, directory available %v; want aks-fabrikam with its directory", r.GetCluster(), r.GetDirectoryAvailable())
	}
	people := reviewedPeople(r)
	if len(people) == 0 {
		t.Fatal("the report names no resolved person")
	}
	for _, p := range people {
		if !strings.Contains(p, tenantBTag) {
			t.Errorf("the report names %q, not a person of tenant B", p)
		}
	}

	// The default entra-agent's ID expected of the same agent: refused at
	// the handshake, naming both IDs; no report.
	conn = orchestrator(defaultID)
	dir = t.TempDir()
	stdout, stderr, code = cli(t, append([]string{"audit", "--cluster", "aks-fabrikam", "--format", "json", "--out", dir}, conn...)...)
	out := stdout + stderr
	if code == 0 {
		t.Fatalf("the audit through an agent presenting %s, configured as %s, succeeded:\n%s", own, defaultID, out)
	}
	// defaultID is a prefix of own: the one wanted is named in
	// parentheses after the agent's address, the one presented quoted.
	mismatch := func(msg string) bool {
		return strings.Contains(msg, entraB+" ("+defaultID+")") && strings.Contains(msg, "unexpected ID") && strings.Contains(msg, own)
	}
	if !mismatch(out) {
		t.Errorf("the failure does not name the agent, the ID wanted (%s) and the one presented (%s):\n%s", defaultID, own, out)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "report*")); len(matches) > 0 {
		t.Errorf("reports written for aks-fabrikam: %v", matches)
	}
	// The orchestrator holds one audit of the cluster, failed with that
	// error, and no report of it.
	c, err := client.Dial(conn[1], certs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	list, err := c.API().ListAudits(ctx, &secureauditv1.ListAuditsRequest{Cluster: "aks-fabrikam"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetAudits()); n != 1 {
		t.Fatalf("%d audits of aks-fabrikam, want the one that failed", n)
	}
	a := list.GetAudits()[0]
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED || !mismatch(a.GetError()) {
		t.Errorf("the audit: %v, error %q; want failed naming %s and %s", a.GetState(), a.GetError(), own, defaultID)
	}
	if stream, err := c.API().GetReport(ctx, &secureauditv1.GetReportRequest{AuditId: a.GetId(), Format: secureauditv1.ReportFormat_REPORT_FORMAT_JSON}); err == nil {
		if _, err := stream.Recv(); err == nil {
			t.Errorf("a report is filed for the failed audit %s of aks-fabrikam", a.GetId())
		}
	}
	t.Logf("the failure, as the CLI shows it:\n%s", out)
}
