package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/services/orchestrator/people/peopletest"
)

const acceptAudience = "secureaudit-e2e"

// TestRiskAcceptance walks a risk acceptance over the real processes: an
// orchestrator trusting a local OpenID Connect issuer over HTTPS, an
// rbac-agent serving a copy of the example cluster (read again at every
// audit), the shared risk- and report-agents, and the secureaudit command
// line. Alice requests the acceptance of a finding and cannot approve it
// herself; Bob approves it; the next audit keeps the finding out of the
// main list, in "Accepted risks"; another binding of the same grant, then
// a wider role, bring it back flagged "grant changed since acceptance";
// once the acceptance expires the finding returns flagged "acceptance
// expired"; the evidence names both people and records the expiry.
//
// The acceptance expires on the wall clock (the orchestrator's only
// clock): the test waits for that instant, set 30 seconds after the request.
func TestRiskAcceptance(t *testing.T) {
	snapshot := filepath.Join(t.TempDir(), "aks-accept")
	if err := os.MkdirAll(snapshot, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join(env.root, "examples", "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(env.root, "examples", "cluster", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snapshot, f.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iss := peopletest.New(t)
	rbac, _ := startBinary(t, identity.RBACAgent, "-snapshot", snapshot, "-cluster", "aks-accept")
	dir := t.TempDir()
	orch := startOrchestrator(t, "-rbac-agent", rbac, "-risk-agent", addr(t, identity.RiskAgent), "-report-agent", addr(t, identity.ReportAgent),
		"-evidence-key", filepath.Join(dir, "evidence.key"),
		"-oidc-issuer", iss.URL(), "-oidc-audience", acceptAudience, "-oidc-ca-file", iss.CAFile)
	conn := []string{"--orchestrator", orch, "--cert-dir", env.stack.PKIDir}
	alice, bob := filepath.Join(dir, "alice.jwt"), filepath.Join(dir, "bob.jwt")
	for path, who := range map[string][2]string{alice: {"alice", "Alice Operator"}, bob: {"bob", "Bob Approver"}} {
		if err := os.WriteFile(path, []byte(iss.Sign(t, iss.Valid(acceptAudience, who[0], who[1]))), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	audit := func(name string) (*secureauditv1.Report, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := client.Dial(orch, env.stack.PKIDir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		out := filepath.Join(dir, name)
		if _, err := c.Run(ctx, client.Options{OutDir: out, Formats: client.Formats}); err != nil {
			t.Fatalf("audit %s: %v", name, err)
		}
		md, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		return readReport(t, filepath.Join(out, "report.json")), string(md)
	}
	first, _ := audit("first")
	var target *secureauditv1.Finding
	for _, f := range first.GetFindings() {
		if f.GetBinding().GetName() == "backup-operator-secrets" && f.GetFamily() == secureauditv1.RuleFamily_RULE_FAMILY_RBAC {
			target = f
			break
		}
	}
	if target == nil {
		t.Fatal("the example has no RBAC finding of the binding backup-operator-secrets")
	}
	expires := time.Now().Add(30 * time.Second).UTC().Truncate(time.Second)

	stdout, stderr, code := cli(t, append([]string{"accept", target.GetId(), "--reason", "nightly backups read every Secret; alerting on use",
		"--ticket", "SEC-42", "--expires", expires.Format(time.RFC3339), "--id-token-file", alice}, conn...)...)
	if code != 0 {
		t.Fatalf("accept: exit %d\n%s%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`requested acceptance (\d+) of `).FindStringSubmatch(stdout)
	if m == nil || !strings.Contains(stdout, "by Alice Operator <alice@example.com>") {
		t.Fatalf("accept output:\n%s", stdout)
	}
	id := m[1]
	stdout, stderr, code = cli(t, append([]string{"accept", "approve", id, "--id-token-file", alice}, conn...)...)
	if code == 0 || !strings.Contains(stderr, "separation of duties: Alice Operator <alice@example.com> requested this and cannot also approve it") {
		t.Errorf("self-approval: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = cli(t, append([]string{"accept", "approve", id, "--id-token-file", bob}, conn...)...)
	if code != 0 || !strings.Contains(stdout, "by Bob Approver <bob@example.com>") || !strings.Contains(stdout, "requested by Alice Operator <alice@example.com>") {
		t.Fatalf("approve: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, code = cli(t, append([]string{"accept", "list"}, conn...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^`+id+`\s+approved\s+aks-accept\s+`+target.GetRuleId()+`\s+ServiceAccount:data/backup-operator\s+backup-operator-secrets`).MatchString(stdout) {
		t.Errorf("accept list:\n%s", stdout)
	}

	in := func(fs []*secureauditv1.Finding, id string) bool {
		for _, f := range fs {
			if f.GetId() == id {
				return true
			}
		}
		return false
	}
	flagged := func(r *secureauditv1.Report, binding string, status secureauditv1.AcceptanceStatus) *secureauditv1.AcceptedFinding {
		for _, af := range r.GetReturnedRisks() {
			if af.GetFinding().GetRuleId() == target.GetRuleId() && af.GetFinding().GetBinding().GetName() == binding && af.GetStatus() == status {
				if !in(r.GetFindings(), af.GetFinding().GetId()) {
					t.Errorf("returned finding %s is not in the main list", af.GetFinding().GetId())
				}
				return af
			}
		}
		return nil
	}
	accepted := func(r *secureauditv1.Report) bool {
		return len(r.GetAcceptedRisks()) == 1 && r.GetAcceptedRisks()[0].GetFinding().GetId() == target.GetId() && !in(r.GetFindings(), target.GetId())
	}
	before := func(what string) {
		t.Helper()
		if !time.Now().Before(expires) {
			t.Fatalf("the acceptance expired before the audit %s: the machine is too slow for this test's 30-second acceptance", what)
		}
	}

	// Accepted: out of the main list, in Accepted risks, expiring soon.
	before("with the acceptance")
	r, md := audit("accepted")
	if !accepted(r) || r.GetAcceptedRisks()[0].GetAcceptance().GetApprovedBy().GetSubject() != "bob" {
		t.Errorf("after approval: accepted %v, finding in main list %v", r.GetAcceptedRisks(), in(r.GetFindings(), target.GetId()))
	}
	for _, want := range []string{"## Accepted risks", "**Expiring within 14 days:**", "Bob Approver", "nightly backups read every Secret"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md does not say %q", want)
		}
	}

	// Another binding grants the same role to the same subject.
	extra := filepath.Join(snapshot, "zz-another-binding.yaml")
	if err := os.WriteFile(extra, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: backup-operator-secrets-2
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: secrets-reader
subjects:
- kind: ServiceAccount
  name: backup-operator
  namespace: data
`), 0o644); err != nil {
		t.Fatal(err)
	}
	before("with another binding")
	r, _ = audit("another-binding")
	if af := flagged(r, "backup-operator-secrets-2", secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED); af == nil ||
		!strings.Contains(af.GetDetail(), "binding backup-operator-secrets-2, was backup-operator-secrets") {
		t.Errorf("another binding: returned %v", r.GetReturnedRisks())
	}
	if !accepted(r) {
		t.Errorf("another binding: the accepted grant itself should stay accepted: %v", r.GetAcceptedRisks())
	}
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}

	// A wider role: secrets-reader also grants pods/exec.
	access := filepath.Join(snapshot, "cluster-access.yaml")
	orig, err := os.ReadFile(access)
	if err != nil {
		t.Fatal(err)
	}
	rules := "    name: secrets-reader\n    resourceVersion: \"41493\"\n    uid: 8f04d4d6-dd28-5298-a6b9-a11b3a376ea4\n  rules:\n"
	if !strings.Contains(string(orig), rules) {
		t.Fatal("examples/cluster/cluster-access.yaml changed: no secrets-reader rules to widen")
	}
	wider := strings.Replace(string(orig), rules, rules+"  - apiGroups:\n    - \"\"\n    resources:\n    - pods/exec\n    verbs:\n    - create\n    - get\n", 1)
	if err := os.WriteFile(access, []byte(wider), 0o644); err != nil {
		t.Fatal(err)
	}
	before("with a wider role")
	r, md = audit("wider-role")
	if af := flagged(r, "backup-operator-secrets", secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED); af == nil || !strings.Contains(af.GetDetail(), "beyond what was accepted") {
		t.Errorf("wider role: returned %v", r.GetReturnedRisks())
	}
	if len(r.GetAcceptedRisks()) != 0 || !strings.Contains(md, "**Back from a risk acceptance: grant changed since acceptance.**") {
		t.Errorf("wider role: still accepted %v, or report.md without the flag", r.GetAcceptedRisks())
	}
	if err := os.WriteFile(access, orig, 0o644); err != nil {
		t.Fatal(err)
	}

	// Expiry: wait for the acceptance's end on the wall clock.
	time.Sleep(time.Until(expires) + time.Second)
	r, md = audit("expired")
	if af := flagged(r, "backup-operator-secrets", secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_EXPIRED); af == nil || len(r.GetAcceptedRisks()) != 0 {
		t.Errorf("after expiry: returned %v, accepted %v", r.GetReturnedRisks(), r.GetAcceptedRisks())
	}
	if !strings.Contains(md, "**Back from a risk acceptance: acceptance expired.**") {
		t.Error("report.md does not flag the expired acceptance")
	}

	// The evidence: request, approval (both people), expiry.
	bundle := filepath.Join(dir, "evidence.bundle")
	if stdout, stderr, code := cli(t, append([]string{"evidence", "export", "--out", bundle}, conn...)...); code != 0 {
		t.Fatalf("evidence export: exit %d\n%s%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Entries []struct{ Record string } `json:"entries"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, e := range b.Entries {
		if strings.Contains(e.Record, `"control":"risk-acceptance"`) {
			records = append(records, e.Record)
		}
	}
	if len(records) != 3 {
		t.Fatalf("%d risk-acceptance entries in the bundle, want request, approval and expiry:\n%s", len(records), strings.Join(records, "\n"))
	}
	for i, want := range [][]string{
		{`"kind":"approval"`, `"criteria":["CC5.2","CC6.3"]`, "Alice Operator <alice@example.com> requested the acceptance", `"oid":"oid-alice"`},
		{"Bob Approver <bob@example.com> approved acceptance " + id, `"approved_by":{`, `"oid":"oid-bob"`, `"oid":"oid-alice"`},
		{"acceptance " + id + " of " + target.GetRuleId(), "expired at " + expires.Format(time.RFC3339)},
	} {
		for _, w := range want {
			if !strings.Contains(records[i], w) {
				t.Errorf("evidence entry %d does not contain %q:\n%s", i, w, records[i])
			}
		}
	}
}
