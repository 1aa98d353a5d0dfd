package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"secureaudit.dev/cli/client"
	"secureaudit.dev/cli/stack"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/tenanttest"
)

// exampleClusterID is the example cluster's Azure resource ID.
const exampleClusterID = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-prod/providers/Microsoft.ContainerService/managedClusters/aks-fabrikam-prod"

// The five processes with the entra-agent in live mode: it authenticates
// to a fake Entra token endpoint with the environment's client secret
// (the real azidentity default chain), reads the fake Graph and ARM over
// HTTPS, and one lookup keeps failing. The audit still succeeds; the report
// says the identity data is incomplete, names the failed lookup, and does
// not mistake the group it could not read for a deleted one.
func TestEntraLivePartial(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(env.root, "examples", "directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap := &secureauditv1.DirectorySnapshot{}
	if err := protojson.Unmarshal(data, snap); err != nil {
		t.Fatal(err)
	}
	fake := tenanttest.New(t, snap, "User.Read.All", "GroupMember.Read.All", "Application.Read.All", "AuditLog.Read.All", "PrivilegedEligibilitySchedule.Read.AzureADGroup", "PrivilegedAssignmentSchedule.Read.AzureADGroup")
	const broken = "e97a7122-b22b-4cca-9229-80bd3b8f5453" // sg-aks-platform-ops
	fake.Fail("/v1.0/groups/"+broken+"/members", 500)

	dir := t.TempDir()
	certFile := filepath.Join(dir, "fake-ca.pem")
	if err := os.WriteFile(certFile, fake.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The services inherit this environment.
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Config{
		BinDir:            env.binDir,
		StateDir:          filepath.Join(dir, "state"),
		Snapshot:          filepath.Join(env.root, "examples", "cluster"),
		ClusterName:       exampleCluster,
		EntraLive:         true,
		ClusterResourceID: exampleClusterID,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop(10 * time.Second)
	c, err := client.Dial(st.Orchestrator(), st.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	formats, err := client.ParseFormats("json,md")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	res, err := c.Run(ctx, client.Options{OutDir: out, Formats: formats})
	if err != nil {
		for _, svc := range st.Services {
			t.Logf("%s:\n%s", svc.Name, svc.Tail(40))
		}
		t.Fatalf("audit: %v", err)
	}
	if !res.Audit.GetDirectoryAvailable() {
		t.Fatal("the audit ran without identity data")
	}
	if fake.Requests("/"+fake.TenantID+"/oauth2/v2.0/token") == 0 {
		t.Error("the entra-agent never asked the fake token endpoint for a token")
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	if !report.GetDirectoryPartial() {
		t.Error("report.json does not say the directory answer was partial")
	}
	var named bool
	for _, e := range report.GetDirectoryErrors() {
		named = named || strings.Contains(e.GetLookup(), broken)
	}
	if n := report.GetDirectoryErrorCount(); int(n) != len(report.GetDirectoryErrors()) || n == 0 {
		t.Errorf("directory error count %d, %d errors listed", n, len(report.GetDirectoryErrors()))
	}
	if !named {
		t.Errorf("the failed lookup of group %s is not among the report's directory errors: %v", broken, report.GetDirectoryErrors())
	}
	resolvedPeople := 0
	for _, f := range append(report.GetFindings(), report.GetInfrastructureFindings()...) {
		if f.GetRuleId() == "ENTRA-001" && f.GetSubject().GetName() == broken {
			t.Errorf("the group whose lookup failed is reported deleted: %s", f.GetDescription())
		}
	}
	for _, r := range report.GetAccessReview() {
		if r.GetResolved() {
			resolvedPeople++
		}
	}
	if resolvedPeople == 0 {
		t.Error("no access-review subject was resolved through the live tenant")
	}
	// The AKS half, read live through armcontainerservice and
	// armauthorization: the cluster's configuration, its posture findings,
	// and the routes through Azure alone in the access review (a
	// namespace-scoped RBAC Writer, a custom runCommand role, the admin
	// group).
	if c := report.GetAksCluster(); !c.GetLocalAccountsEnabled() || !c.GetAzureRbac() || len(c.GetAdminGroupObjectIds()) != 1 {
		t.Errorf("report's AKS cluster = %v, want the example's (local accounts, Azure RBAC, one admin group)", c)
	}
	var aks001 bool
	for _, f := range report.GetFindings() {
		aks001 = aks001 || f.GetRuleId() == "AKS-001"
	}
	if !aks001 {
		t.Error("no AKS-001 (local accounts enabled) finding from the live cluster read")
	}
	routes := map[string]string{}
	for _, r := range report.GetAccessReview() {
		for _, g := range r.GetGrants() {
			if g.GetRoute() != "" {
				routes[r.GetSubject().GetName()] = g.GetBinding().GetKind().String() + " " + g.GetScope().GetNamespace()
			}
		}
	}
	for name, want := range map[string]string{
		"nina.berg@fabrikamcorp.onmicrosoft.com": "BINDING_KIND_AZURE_ROLE_ASSIGNMENT payments",
		"tom.weber@fabrikamcorp.onmicrosoft.com": "BINDING_KIND_AZURE_ROLE_ASSIGNMENT ",
		"2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25":   "BINDING_KIND_AKS_ADMIN_GROUP ",
	} {
		if routes[name] != want {
			t.Errorf("access review route of %s = %q, want %q", name, routes[name], want)
		}
	}
	// PIM, read live through armauthorization (roleEligibilityScheduleInstances)
	// and msgraph (PIM for Groups): Marco's eligible AKS Cluster Admin Role
	// is an eligible grant, Priya an eligible member of the admin group,
	// and standing admins raise AKS-009.
	var marcoEligible, priyaEligible, aks009 bool
	for _, r := range report.GetAccessReview() {
		for _, g := range r.GetGrants() {
			if r.GetSubject().GetName() == "marco.rossi@fabrikamcorp.onmicrosoft.com" && g.GetEligible() && strings.HasPrefix(g.GetRoute(), "eligible through PIM") {
				marcoEligible = true
			}
		}
		for _, m := range r.GetMembers() {
			if r.GetSubject().GetName() == "2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25" && m.GetUserPrincipalName() == "priya.raman@fabrikamcorp.onmicrosoft.com" {
				priyaEligible = m.GetEligible()
			}
		}
	}
	for _, f := range report.GetFindings() {
		aks009 = aks009 || f.GetRuleId() == "AKS-009"
	}
	if !marcoEligible || !priyaEligible || !aks009 {
		t.Errorf("PIM through the live tenant: Marco's eligible grant %v, Priya eligible member %v, AKS-009 %v; want all", marcoEligible, priyaEligible, aks009)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "INCOMPLETE") || !strings.Contains(string(md), broken) {
		t.Error("report.md does not say the identity data is incomplete and which lookup failed")
	}
}

// TestEntraCredentialViolation runs the entra-agent live with a token that
// holds a Graph permission its scope manifest does not declare: the agent's
// self-check presents a violation, and the orchestrator, started with
// -refuse-on-credential-violation, refuses the audit, naming the agent and
// the permission (SOC 2 CC6.2), as it does for the rbac-agent.
func TestEntraCredentialViolation(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(env.root, "examples", "directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap := &secureauditv1.DirectorySnapshot{}
	if err := protojson.Unmarshal(data, snap); err != nil {
		t.Fatal(err)
	}
	fake := tenanttest.New(t, snap, "User.Read.All", "GroupMember.Read.All", "Application.Read.All", "AuditLog.Read.All", "PrivilegedEligibilitySchedule.Read.AzureADGroup", "PrivilegedAssignmentSchedule.Read.AzureADGroup", "Directory.ReadWrite.All")
	dir := t.TempDir()
	certFile := filepath.Join(dir, "fake-ca.pem")
	if err := os.WriteFile(certFile, fake.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"SSL_CERT_FILE":                              certFile,
		"AZURE_TENANT_ID":                            fake.TenantID,
		"AZURE_CLIENT_ID":                            "11111111-2222-4333-8444-555555555555",
		"AZURE_CLIENT_SECRET":                        "fake-secret-for-the-fake-tenant",
		"AZURE_AUTHORITY_HOST":                       fake.AuthorityHost(),
		"SECUREAUDIT_GRAPH_URL":                      fake.GraphURL(),
		"SECUREAUDIT_ARM_URL":                        fake.URL,
		"SECUREAUDIT_DISABLE_INSTANCE_DISCOVERY":     "true",
		"SECUREAUDIT_REFUSE_ON_CREDENTIAL_VIOLATION": "true",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Config{
		BinDir:            env.binDir,
		StateDir:          filepath.Join(dir, "state"),
		Snapshot:          filepath.Join(env.root, "examples", "cluster"),
		ClusterName:       exampleCluster,
		EntraLive:         true,
		ClusterResourceID: exampleClusterID,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop(10 * time.Second)
	c, err := client.Dial(st.Orchestrator(), st.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	formats, err := client.ParseFormats("json")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(ctx, client.Options{OutDir: filepath.Join(dir, "out"), Formats: formats})
	if err == nil || !strings.Contains(err.Error(), "credential violation") || !strings.Contains(err.Error(), "entra-agent") ||
		!strings.Contains(err.Error(), "Directory.ReadWrite.All") {
		for _, svc := range st.Services {
			t.Logf("%s:\n%s", svc.Name, svc.Tail(20))
		}
		t.Fatalf("audit with an over-broad entra-agent credential: err = %v, want a refusal naming the entra-agent and Directory.ReadWrite.All", err)
	}
}
