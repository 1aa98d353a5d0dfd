package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/services/orchestrator/people/peopletest"
	"secureaudit.dev/services/report-agent/render"
)

// reviewPolicy is the caller policy of TestReviewCycle: the operators'
// terminal (the cli certificate) may audit, request acceptances and export
// evidence, but holds no approver role; the reviewers' terminal holds
// viewer and approver. The stack's CA issues no new certificates (its key
// is not kept), so the reviewers' terminal presents the entra-agent's
// certificate, which no process of this test runs as.
const reviewPolicy = `apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, operator, auditor]
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/entra-agent
    roles: [viewer, approver]
`

// copyExample copies examples/cluster into a new directory the rbac-agent
// reads at every audit.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	snapshot := filepath.Join(t.TempDir(), name)
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
	return snapshot
}

// TestReviewCycle walks an access review over the real processes: an
// orchestrator trusting a local OpenID Connect issuer over HTTPS, an
// rbac-agent on a copy of the example cluster (read at every audit), the
// shared risk- and report-agents, and the secureaudit command line with
// two mTLS identities. The first audit opens a campaign and writes
// report.csv with a key per row. The operators' terminal (no approver
// role) is refused; Carol cannot decide her own item; an edited sheet is
// refused naming its row, with nothing recorded; Bob imports the
// re-ordered sheet (Carol's access: Revoke); Alice asks to accept a risk
// and Bob approves it. The support-impersonator binding is then removed
// from the snapshot: the next audit verifies the revocation, shows the
// campaign's state in every format, and keeps the accepted risk out of the
// main list. The evidence bundle over the cycle verifies with the
// orchestrator's key and names each person. (An acceptance's expiry is
// walked by TestRiskAcceptance.)
func TestReviewCycle(t *testing.T) {
	snapshot := copyExample(t, "aks-review")
	iss := peopletest.New(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "callers.yaml")
	if err := os.WriteFile(policy, []byte(reviewPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	rbac, _ := startBinary(t, identity.RBACAgent, "-snapshot", snapshot, "-cluster", "aks-review")
	orch, logPath := startBinary(t, "orchestrator", "-db", filepath.Join(dir, "db.sqlite"), "-approve-bundled-scopes=true", "-callers", policy,
		"-rbac-agent", rbac, "-risk-agent", addr(t, identity.RiskAgent), "-report-agent", addr(t, identity.ReportAgent),
		"-evidence-key", filepath.Join(dir, "evidence.key"),
		"-oidc-issuer", iss.URL(), "-oidc-audience", acceptAudience, "-oidc-ca-file", iss.CAFile)
	// The reviewers' terminal: the CLI reads cli.crt and cli.key from its
	// --cert-dir; here they are the entra-agent's.
	reviewerCerts := filepath.Join(dir, "reviewer-certs")
	if err := os.MkdirAll(reviewerCerts, 0o700); err != nil {
		t.Fatal(err)
	}
	from, to := pki.Paths(env.stack.PKIDir, identity.EntraAgent), pki.Paths(reviewerCerts, identity.CLI)
	for src, dst := range map[string]string{from.Cert: to.Cert, from.Key: to.Key, from.CA: to.CA} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	operator := []string{"--orchestrator", orch, "--cert-dir", env.stack.PKIDir}
	reviewer := []string{"--orchestrator", orch, "--cert-dir", reviewerCerts}
	alice, bob, carol := filepath.Join(dir, "alice.jwt"), filepath.Join(dir, "bob.jwt"), filepath.Join(dir, "carol.jwt")
	carolTok := iss.Valid(acceptAudience, "carol", "Carol Ops")
	carolTok.Email = "carol.ops@fabrikamcorp.onmicrosoft.com"
	for path, tok := range map[string]peopletest.Token{alice: iss.Valid(acceptAudience, "alice", "Alice Operator"), bob: iss.Valid(acceptAudience, "bob", "Bob Reviewer"), carol: carolTok} {
		if err := os.WriteFile(path, []byte(iss.Sign(t, tok)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(who []string, args ...string) (string, string, int) {
		t.Helper()
		return cli(t, append(args, who...)...)
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
		return readReport(t, filepath.Join(out, "report.json")), out
	}

	first, out := audit("first")
	// The report's Revoke rows (SARIF results marked Revoke) of users and
	// groups are the grants the orchestrator tracks: the first campaign
	// counts one revocation per grant, and the second audit checks exactly
	// those (below).
	revokeRows := revokeGrants(t, first, filepath.Join(out, "report.sarif"))
	if len(revokeRows) == 0 {
		t.Fatal("the first report has no Revoke row of a user or group: the example no longer tests the tracking")
	}
	if c := first.GetReview().GetCampaigns(); len(c) == 1 && int(c[0].GetRevokeActions()) != len(revokeRows) {
		t.Errorf("the first campaign tracks %d Revoke actions; the report's Revoke rows name %d grants of users and groups: %v", c[0].GetRevokeActions(), len(revokeRows), slices.Sorted(maps.Keys(revokeRows)))
	}
	const carolName = "carol.ops@fabrikamcorp.onmicrosoft.com"
	var carolKey string
	for _, s := range first.GetAccessReview() {
		if s.GetSubject().GetName() == carolName {
			carolKey = s.GetKey()
		}
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(s.GetKey()) {
			t.Errorf("review item %s has no key: %q", s.GetSubject().GetName(), s.GetKey())
		}
	}
	if carolKey == "" {
		t.Fatalf("the example's access review has no item for %s", carolName)
	}
	if c := first.GetReview().GetCampaigns(); len(c) != 1 || c[0].GetAuditId() != first.GetAuditId() || int(c[0].GetPending()) != len(first.GetAccessReview()) {
		t.Errorf("first report's campaign = %v", c)
	}
	sheet, err := os.ReadFile(filepath.Join(out, "report.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(sheet))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	// Confirmed and Requires justification go to items without a critical
	// or high finding: the report's Revoke actions on the others stay
	// tracked (a Confirmed would overrule them).
	mild := func(row []string) bool { s := row[col["highest_severity"]]; return s != "Critical" && s != "High" }
	carolRow, otherRow, thirdRow := -1, -1, -1
	for i, row := range rows[1:] {
		switch {
		case row[col["key"]] == carolKey:
			carolRow = i + 1
		case otherRow < 0 && mild(row):
			otherRow = i + 1
		case thirdRow < 0 && mild(row):
			thirdRow = i + 1
		}
	}
	if carolRow < 0 || otherRow < 0 || thirdRow < 0 {
		t.Fatalf("report.csv has no row keyed %s, or not two rows without a critical or high finding:\n%s", carolKey, sheet)
	}
	rows[carolRow][col["decision"]], rows[carolRow][col["comment"]] = "Revoke", "left the support rotation"
	rows[otherRow][col["decision"]] = "Confirmed"
	write := func(name string, rows [][]string) string {
		t.Helper()
		var b strings.Builder
		w := csv.NewWriter(&b)
		if err := w.WriteAll(rows); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Re-ordered: the rows reversed under the header.
	reordered := [][]string{rows[0]}
	for i := len(rows) - 1; i > 0; i-- {
		reordered = append(reordered, rows[i])
	}
	filled := write("filled.csv", reordered)
	carolAt := len(rows) - carolRow + 1 // Carol's spreadsheet row in the re-ordered sheet
	edited := make([][]string, len(reordered))
	for i, r := range reordered {
		edited[i] = append([]string(nil), r...)
	}
	edited[carolAt-1][col["access"]] = "nothing much"
	editedPath := write("edited.csv", edited)

	// The operators' terminal holds no approver role.
	stdout, stderr, code := run(operator, "review", "import", filled, "--id-token-file", bob)
	if code == 0 || !strings.Contains(stderr, "sa/cli may not call /secureaudit.v1.ReviewService/ImportReview") {
		t.Errorf("import from the operators' terminal: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(operator, "review", "decide", carolKey, "--decision", "Confirmed", "--id-token-file", bob)
	if code == 0 || !strings.Contains(stderr, "may not call /secureaudit.v1.ReviewService/DecideReview") {
		t.Errorf("decide from the operators' terminal: exit %d\n%s%s", code, stdout, stderr)
	}
	// Carol does not decide her own access.
	stdout, stderr, code = run(reviewer, "review", "decide", carolKey, "--decision", "Confirmed", "--id-token-file", carol)
	if code == 0 || !strings.Contains(stderr, "separation of duties: Carol Ops <"+carolName+"> cannot decide review item "+carolKey) {
		t.Errorf("Carol deciding her own item: exit %d\n%s%s", code, stdout, stderr)
	}
	// An edited sheet is refused, naming the row; nothing is recorded.
	stdout, stderr, code = run(reviewer, "review", "import", editedPath, "--id-token-file", bob)
	if want := "row " + strconv.Itoa(carolAt) + ": item " + carolKey + "'s access was edited"; code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("edited sheet: exit %d, want %q\n%s%s", code, want, stdout, stderr)
	}
	stdout, _, code = run(operator, "review", "status")
	if code != 0 || !strings.Contains(stdout, "0 decided") {
		t.Errorf("status after the refused sheet:\n%s", stdout)
	}
	// Bob imports the re-ordered sheet.
	stdout, stderr, code = run(reviewer, "review", "import", filled, "--id-token-file", bob)
	if code != 0 || !strings.Contains(stdout, "decided Revoke for item "+carolKey+" (User:"+carolName+") by Bob Reviewer <bob@example.com>") ||
		!regexp.MustCompile(`revocation \d+ tracked: remove User:`+regexp.QuoteMeta(carolName)+`'s access through support-impersonator`).MatchString(stdout) || !strings.Contains(stdout, "2 decisions recorded") {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}

	// One more item, decided on its own.
	third := rows[thirdRow][col["key"]]
	stdout, stderr, code = run(reviewer, "review", "decide", third, "--decision", "Requires-justification", "--justification", "who uses this?", "--id-token-file", bob)
	if code != 0 || !strings.Contains(stdout, "decided Requires justification for item "+third) {
		t.Fatalf("decide: exit %d\n%s%s", code, stdout, stderr)
	}

	// Alice asks to accept a risk; Bob approves it from the reviewers'
	// terminal.
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
	// It expires on the wall clock (the orchestrator's only clock) a
	// minute from now, within the cycle.
	expires := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	stdout, stderr, code = run(operator, "accept", target.GetId(), "--reason", "nightly backups read every Secret; alerting on use", "--ticket", "SEC-42",
		"--expires", expires.Format(time.RFC3339), "--id-token-file", alice)
	m := regexp.MustCompile(`requested acceptance (\d+) of `).FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("accept: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code = run(operator, "accept", "approve", m[1], "--id-token-file", bob); code == 0 || !strings.Contains(stderr, "may not call /secureaudit.v1.AcceptanceService/ApproveAcceptance") {
		t.Errorf("approval from the operators' terminal: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code = run(reviewer, "accept", "approve", m[1], "--id-token-file", bob); code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, stdout, stderr)
	}

	// Carol's access is removed from the cluster.
	access := filepath.Join(snapshot, "cluster-access.yaml")
	data, err := os.ReadFile(access)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	uid := strings.Index(text, "uid: bec5d143-377c-5b1b-8d93-e3b2675644fa") // the support-impersonator ClusterRoleBinding
	end := strings.Index(text, "\nkind: List")
	if uid < 0 || end < uid {
		t.Fatal("examples/cluster/cluster-access.yaml changed: no support-impersonator binding as its last item")
	}
	start := strings.LastIndex(text[:uid], "\n- apiVersion:")
	if err := os.WriteFile(access, []byte(text[:start]+text[end:]), 0o644); err != nil {
		t.Fatal(err)
	}

	second, out := audit("second")
	if !time.Now().Before(expires) {
		t.Fatal("the acceptance expired before the second audit ended: the machine is too slow for this test's one-minute acceptance")
	}
	// Bob's Revoke is verified; so is the report's own Revoke action on
	// Carol's grant; the other Revoke actions of the first report, not
	// carried out, are still present, high.
	var decided, still int
	for _, v := range second.GetReview().GetRevocations() {
		switch {
		case v.GetSubject().GetName() == carolName:
			if v.GetState() != secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED {
				t.Errorf("Carol's revocation %d: %v", v.GetId(), v.GetState())
			}
			if v.GetDecidedBy().GetSubject() == "bob" {
				decided++
			}
		case v.GetState() == secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT && v.GetFindingId() != "" && v.GetSeverity() == secureauditv1.Severity_SEVERITY_HIGH:
			still++
		default:
			t.Errorf("second audit's revocation %v", v)
		}
	}
	checked := map[string]bool{}
	for _, v := range second.GetReview().GetRevocations() {
		if v.GetFindingId() != "" {
			for _, b := range v.GetBindings() {
				checked[grantText(v.GetSubject(), b)] = true
			}
		}
	}
	if !maps.Equal(checked, revokeRows) {
		t.Errorf("the second audit checked the revocations of %v; the first report's Revoke rows of users and groups are %v",
			slices.Sorted(maps.Keys(checked)), slices.Sorted(maps.Keys(revokeRows)))
	}
	if decided != 1 || still == 0 {
		t.Errorf("second audit: %d of Bob's revocations verified, %d Revoke actions still present; want 1 and some", decided, still)
	}
	var campaign *secureauditv1.ReviewCampaign
	for _, c := range second.GetReview().GetCampaigns() {
		if c.GetAuditId() == first.GetAuditId() {
			campaign = c
		}
	}
	if campaign == nil || campaign.GetDecided() != 3 || campaign.GetRevoked() != 1 || campaign.GetVerified() == 0 || campaign.GetRevokeActions() == 0 || campaign.GetPending() != campaign.GetItems()-3 {
		t.Errorf("first campaign in the second report = %v", campaign)
	}
	for _, f := range second.GetFindings() {
		if f.GetId() == target.GetId() {
			t.Errorf("the accepted finding %s is in the second report's main list", f.GetId())
		}
	}
	if len(second.GetAcceptedRisks()) != 1 || second.GetAcceptedRisks()[0].GetFinding().GetId() != target.GetId() {
		t.Errorf("second report's accepted risks = %v", second.GetAcceptedRisks())
	}
	for file, wants := range map[string][]string{
		"report.md":    {"## Review campaigns", "Verified: User " + carolName + " no longer holds access through ClusterRoleBinding support-impersonator", "| 3 of "},
		"report.html":  {`<section id="campaigns">`, "Verified: User " + carolName},
		"report.sarif": {`"ruleId": "REVIEW-REVOKE"`, "Revocation not carried out: "},
	} {
		doc, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(string(doc), w) {
				t.Errorf("%s does not say %q", file, w)
			}
		}
	}
	stdout, _, code = run(operator, "review", "status", "--audit", first.GetAuditId())
	if code != 0 || !strings.Contains(stdout, "3 decided") || !strings.Contains(stdout, "Requires justification  Bob Reviewer <bob@example.com>  who uses this?") || !strings.Contains(stdout, "1 revoked, ") || !regexp.MustCompile(`(?m)^\d+\s+verified\s+User:`+regexp.QuoteMeta(carolName)+`\s+support-impersonator\s+0\s+-\s+Bob Reviewer`).MatchString(stdout) {
		t.Errorf("review status of the first campaign: exit %d\n%s", code, stdout)
	}

	// The acceptance expires: the next audit puts the finding back in the
	// main list, flagged.
	time.Sleep(time.Until(expires) + time.Second)
	afterExpiry, out3 := audit("third")
	var back bool
	for _, af := range afterExpiry.GetReturnedRisks() {
		if af.GetFinding().GetId() == target.GetId() && af.GetStatus() == secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_EXPIRED {
			back = true
		}
	}
	if !back || len(afterExpiry.GetAcceptedRisks()) != 0 || !slices.ContainsFunc(afterExpiry.GetFindings(), func(f *secureauditv1.Finding) bool { return f.GetId() == target.GetId() }) {
		t.Errorf("after the acceptance expired: returned %v, accepted %v", afterExpiry.GetReturnedRisks(), afterExpiry.GetAcceptedRisks())
	}
	if md, err := os.ReadFile(filepath.Join(out3, "report.md")); err != nil || !strings.Contains(string(md), "**Back from a risk acceptance: acceptance expired.**") {
		t.Errorf("the third report.md does not flag the expired acceptance (%v)", err)
	}

	// The evidence bundle over the cycle verifies with the orchestrator's
	// key and names each person.
	bundle := filepath.Join(dir, "evidence.bundle")
	if stdout, stderr, code := run(operator, "evidence", "export", "--out", bundle); code != 0 {
		t.Fatalf("evidence export: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code := cli(t, "evidence", "verify", bundle, "--public-key", publicKey(t, logPath)); code != 0 {
		t.Fatalf("evidence verify: exit %d\n%s%s", code, stdout, stderr)
	}
	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Entries []struct{ Record string } `json:"entries"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, e := range b.Entries {
		if strings.Contains(e.Record, `"control":"access-review"`) || strings.Contains(e.Record, `"control":"risk-acceptance"`) {
			records = append(records, e.Record)
		}
	}
	all := strings.Join(records, "\n")
	for _, want := range []string{
		"Bob Reviewer \\u003cbob@example.com\\u003e decided Revoke for review item " + carolKey,
		`"criteria":["CC6.2","CC6.3","CC5.2"]`,
		"Bob Reviewer \\u003cbob@example.com\\u003e decided Confirmed",
		"Bob Reviewer \\u003cbob@example.com\\u003e decided Requires justification for review item " + third,
		"verified the revocation of User:" + carolName + "'s access through support-impersonator",
		"still present on aks-review, 1 audit(s) after its revocation (the report's Revoke action on finding",
		`"criteria":["CC6.2"]`,
		"Alice Operator \\u003calice@example.com\\u003e requested the acceptance",
		"Bob Reviewer \\u003cbob@example.com\\u003e approved acceptance " + m[1],
		"acceptance " + m[1] + " of " + target.GetRuleId(), "expired at " + expires.Format(time.RFC3339),
		`"oid":"oid-bob"`, `"oid":"oid-alice"`,
	} {
		if !strings.Contains(all, want) && !strings.Contains(all, strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(want)) {
			t.Errorf("the evidence bundle does not contain %q:\n%s", want, all)
		}
	}
}

// grantText names a subject's grant through a binding.
func grantText(s *secureauditv1.SubjectRef, b *secureauditv1.BindingRef) string {
	return s.GetKind().String() + ":" + s.GetNamespace() + "/" + s.GetName() + " " + b.GetKind().String() + ":" + b.GetNamespace() + "/" + b.GetName()
}

// revokeGrants reads the SARIF results a report marks Revoke and returns
// the grants (subject and binding) of those about users and groups, the
// revocations the orchestrator tracks and the next audit verifies.
func revokeGrants(t *testing.T, report *secureauditv1.Report, sarifPath string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(sarifPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				RuleID              string            `json:"ruleId"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
				Properties          struct {
					Action string `json:"action"`
				} `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*secureauditv1.Finding{}
	for _, f := range report.GetFindings() {
		byID[f.GetId()] = f
	}
	out := map[string]bool{}
	for _, res := range doc.Runs[0].Results {
		if res.RuleID == render.ChokeRuleID || res.RuleID == render.RevocationRuleID || res.Properties.Action != string(render.ActionRevoke) {
			continue
		}
		f := byID[res.PartialFingerprints[render.FingerprintKey]]
		if f == nil {
			t.Fatalf("SARIF result %v marked Revoke is not a finding of report.json", res)
		}
		if k := f.GetSubject().GetKind(); f.GetBinding() != nil && (k == secureauditv1.SubjectKind_SUBJECT_KIND_USER || k == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP) {
			out[grantText(f.GetSubject(), f.GetBinding())] = true
		}
	}
	return out
}
