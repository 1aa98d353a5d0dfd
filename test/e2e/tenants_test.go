package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/tenanttest"
)

// Tenants of TestTenantEntraAgents: A is the example directory's, B a
// second tenant derived from it, C one whose -tenant-entra-agent points at
// tenant A's agent by mistake, D one no entra-agent serves.
const (
	e2eTenantA = "38da03cf-8908-4b39-8df4-f889b1020287"
	e2eTenantB = "b7f1c2d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
	e2eTenantC = "c3c3c3c3-0000-4000-8000-00000000c0c0"
	e2eTenantD = "d4d4d4d4-0000-4000-8000-00000000d0d0"
	tenantBTag = " [tenant B]"
)

// TestTenantEntraAgents runs an orchestrator with no default rbac-agent or
// entra-agent and two real entra-agent processes serving two tenants'
// directory snapshots (the example's, and a second tenant derived from it
// whose users' and service principals' display names carry tenantBTag), configured with
// -tenant-entra-agent. Clusters registered with tenants A and B (secureaudit
// cluster add --tenant) are each resolved by their tenant's agent, as the
// people in their reports' access reviews show; a cluster of tenant C,
// whose configured agent is tenant A's, fails naming the cluster, the
// address and both tenants with no report; a cluster of tenant D, which no
// agent serves, fails saying so.
func TestTenantEntraAgents(t *testing.T) {
	example := filepath.Join(env.root, "examples", "directory.json")
	dirB := tenantBDirectory(t, example)
	entraA, _ := startBinary(t, "entra-agent", "-directory", example)
	entraB, _ := startBinary(t, "entra-agent", "-directory", dirB)
	snapshot := filepath.Join(env.root, "examples", "cluster")
	rbac := map[string]string{}
	for _, c := range []string{"aks-tenant-a", "aks-tenant-b", "aks-tenant-c"} {
		rbac[c], _ = startBinary(t, "rbac-agent", "-snapshot", snapshot, "-cluster", c)
	}
	orch := startOrchestrator(t,
		"-rbac-agent", "",
		"-tenant-entra-agent", e2eTenantA+"="+entraA,
		"-tenant-entra-agent", e2eTenantB+"="+entraB+",spiffe://secureaudit.local/ns/secureaudit/sa/entra-agent",
		"-tenant-entra-agent", e2eTenantC+"="+entraA,
		"-risk-agent", addr(t, "risk-agent"),
		"-report-agent", addr(t, "report-agent"))
	conn := []string{"--orchestrator", orch, "--cert-dir", env.stack.PKIDir}
	run := func(args ...string) (string, int) {
		t.Helper()
		stdout, stderr, code := cli(t, append(args, conn...)...)
		return stdout + stderr, code
	}
	const aks = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-prod/providers/Microsoft.ContainerService/managedClusters/aks-fabrikam-prod"
	for _, add := range [][]string{
		{"aks-tenant-a", "--agent", rbac["aks-tenant-a"], "--tenant", e2eTenantA, "--aks-resource-id", aks},
		{"aks-tenant-b", "--agent", rbac["aks-tenant-b"], "--tenant", e2eTenantB},
		{"aks-tenant-c", "--agent", rbac["aks-tenant-c"], "--tenant", e2eTenantC},
		{"aks-tenant-d", "--agent", rbac["aks-tenant-a"], "--tenant", e2eTenantD},
	} {
		if out, code := run(append([]string{"cluster", "add"}, add...)...); code != 0 {
			t.Fatalf("cluster add %s: exit %d\n%s", add[0], code, out)
		}
	}

	// Each tenant's cluster is resolved by its tenant's agent.
	people := map[string][]string{}
	for _, c := range []string{"aks-tenant-a", "aks-tenant-b"} {
		dir := t.TempDir()
		out, code := run("audit", "--cluster", c, "--format", "json", "--out", dir)
		if code != 0 {
			t.Fatalf("audit of %s: exit %d\n%s", c, code, out)
		}
		r := readReport(t, filepath.Join(dir, "report.json"))
		if r.GetCluster() != c || !r.GetDirectoryAvailable() {
			t.Errorf("report of %s: cluster %q, directory available %v", c, r.GetCluster(), r.GetDirectoryAvailable())
		}
		people[c] = reviewedPeople(r)
		if len(people[c]) == 0 {
			t.Fatalf("the report of %s names no resolved person", c)
		}
	}
	for _, p := range people["aks-tenant-a"] {
		if strings.Contains(p, tenantBTag) {
			t.Errorf("aks-tenant-a's report names %q, a person of tenant B", p)
		}
	}
	for _, p := range people["aks-tenant-b"] {
		if !strings.Contains(p, tenantBTag) {
			t.Errorf("aks-tenant-b's report names %q, not a person of tenant B", p)
		}
	}

	// Tenant C's configured agent serves tenant A: refused, no report.
	cDir := t.TempDir()
	out, code := run("audit", "--cluster", "aks-tenant-c", "--format", "json", "--out", cDir)
	if code == 0 {
		t.Fatalf("the audit of aks-tenant-c through tenant A's agent succeeded:\n%s", out)
	}
	for _, want := range []string{`cluster "aks-tenant-c" registered with Entra tenant "` + e2eTenantC + `"`, `serves tenant "` + e2eTenantA + `"`, entraA, "no report is filed"} {
		if !strings.Contains(out, want) {
			t.Errorf("aks-tenant-c's failure does not say %q:\n%s", want, out)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(cDir, "report*")); len(matches) > 0 {
		t.Errorf("reports written for aks-tenant-c: %v", matches)
	}

	// Tenant D: no agent serves it, and there is no default one.
	out, code = run("audit", "--cluster", "aks-tenant-d", "--format", "json", "--out", t.TempDir())
	if code == 0 || !strings.Contains(out, "cluster aks-tenant-d is registered with Entra tenant "+e2eTenantD+" and no entra-agent serves that tenant") {
		t.Errorf("audit of aks-tenant-d: exit %d\n%s", code, out)
	}
}

// tenantBDirectory writes a second tenant's directory snapshot derived from
// the example: its tenant ID is e2eTenantB and every user's and service
// principal's display name carries tenantBTag.
func tenantBDirectory(t *testing.T, example string) string {
	t.Helper()
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var dir map[string]any
	if err := json.Unmarshal(data, &dir); err != nil {
		t.Fatal(err)
	}
	if dir["tenantId"] != e2eTenantA {
		t.Fatalf("the example directory's tenant is %v, want %s", dir["tenantId"], e2eTenantA)
	}
	dir["tenantId"] = e2eTenantB
	for _, kind := range []string{"users", "servicePrincipals"} {
		objects, _ := dir[kind].([]any)
		for _, o := range objects {
			m := o.(map[string]any)
			m["displayName"] = m["displayName"].(string) + tenantBTag
		}
	}
	out, err := json.Marshal(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "directory-tenant-b.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// reviewedPeople are the display names of the people a report's access
// review names: the users bound, and the groups' members and owners.
func reviewedPeople(r *secureauditv1.Report) []string {
	var out []string
	for _, s := range r.GetAccessReview() {
		for _, p := range append(append([]*secureauditv1.Person{s.GetPerson()}, s.GetMembers()...), s.GetOwners()...) {
			if p.GetDisplayName() != "" {
				out = append(out, p.GetDisplayName())
			}
		}
	}
	return out
}

// TestTenantEntraAgentPerAuditCluster runs a live entra-agent (the fake
// Entra and ARM of tenanttest, over HTTPS, serving the example directory)
// started without -cluster-resource-id, as its tenant's agent: the audit of
// a cluster registered with the example's AKS resource ID reads that
// cluster's Azure access (the report's AKS cluster and the Azure grants of
// its access review), because the ID travels with the audit's Resolve
// requests; the audit of a cluster of the same tenant registered without
// one reads none.
func TestTenantEntraAgentPerAuditCluster(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(env.root, "examples", "directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap := &secureauditv1.DirectorySnapshot{}
	if err := protojson.Unmarshal(data, snap); err != nil {
		t.Fatal(err)
	}
	fake := tenanttest.New(t, snap, "User.Read.All", "GroupMember.Read.All", "Application.Read.All", "AuditLog.Read.All", "PrivilegedEligibilitySchedule.Read.AzureADGroup", "PrivilegedAssignmentSchedule.Read.AzureADGroup")
	certFile := filepath.Join(t.TempDir(), "fake-ca.pem")
	if err := os.WriteFile(certFile, fake.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The processes inherit this environment; only the entra-agent uses it.
	for k, v := range map[string]string{
		"SSL_CERT_FILE":                          certFile,
		"AZURE_TENANT_ID":                        fake.TenantID,
		"AZURE_CLIENT_ID":                        "11111111-2222-4333-8444-555555555555",
		"AZURE_CLIENT_SECRET":                    "fake-secret-for-the-fake-tenant",
		"AZURE_AUTHORITY_HOST":                   fake.AuthorityHost(),
		"SECUREAUDIT_GRAPH_URL":                  fake.GraphURL(),
		"SECUREAUDIT_ARM_URL":                    fake.URL,
		"SECUREAUDIT_DISABLE_INSTANCE_DISCOVERY": "true",
	} {
		t.Setenv(k, v)
	}
	entra, _ := startBinary(t, "entra-agent", "-live")
	snapshot := filepath.Join(env.root, "examples", "cluster")
	withAKS, _ := startBinary(t, "rbac-agent", "-snapshot", snapshot, "-cluster", "aks-live")
	withoutAKS, _ := startBinary(t, "rbac-agent", "-snapshot", snapshot, "-cluster", "aks-live-plain")
	orch := startOrchestrator(t,
		"-rbac-agent", "",
		"-tenant-entra-agent", fake.TenantID+"="+entra,
		"-risk-agent", addr(t, "risk-agent"),
		"-report-agent", addr(t, "report-agent"))
	conn := []string{"--orchestrator", orch, "--cert-dir", env.stack.PKIDir}
	for _, add := range [][]string{
		{"aks-live", "--agent", withAKS, "--tenant", fake.TenantID, "--aks-resource-id", exampleClusterID},
		{"aks-live-plain", "--agent", withoutAKS, "--tenant", fake.TenantID},
	} {
		if stdout, stderr, code := cli(t, append(append([]string{"cluster", "add"}, add...), conn...)...); code != 0 {
			t.Fatalf("cluster add %s: exit %d\n%s%s", add[0], code, stdout, stderr)
		}
	}
	audit := func(cluster string) *secureauditv1.Report {
		t.Helper()
		dir := t.TempDir()
		stdout, stderr, code := cli(t, append([]string{"audit", "--cluster", cluster, "--format", "json", "--out", dir}, conn...)...)
		if code != 0 {
			t.Fatalf("audit of %s: exit %d\n%s%s", cluster, code, stdout, stderr)
		}
		return readReport(t, filepath.Join(dir, "report.json"))
	}
	azureGrants := func(r *secureauditv1.Report) int {
		n := 0
		for _, s := range r.GetAccessReview() {
			for _, g := range s.GetGrants() {
				if g.GetRoute() != "" {
					n++
				}
			}
		}
		return n
	}
	r := audit("aks-live")
	if r.GetAksCluster().GetId() != exampleClusterID || !r.GetDirectoryAvailable() {
		t.Errorf("report of aks-live: AKS cluster %q, directory available %v; want %s read per audit", r.GetAksCluster().GetId(), r.GetDirectoryAvailable(), exampleClusterID)
	}
	if azureGrants(r) == 0 {
		t.Error("the access review of aks-live lists no Azure grant: the cluster's role assignments were not read")
	}
	plain := audit("aks-live-plain")
	if plain.GetAksCluster() != nil || azureGrants(plain) != 0 {
		t.Errorf("report of aks-live-plain: AKS cluster %v, %d Azure grants; want none (no AKS resource ID registered, none configured)", plain.GetAksCluster(), azureGrants(plain))
	}
	if fake.Requests("/subscriptions/") == 0 {
		t.Error("the entra-agent never asked the fake ARM")
	}
}
