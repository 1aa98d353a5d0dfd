package render

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// campaignReport is the sample report with keyed review items, the previous
// audit's campaign overdue with one revocation verified and one still
// present, and this audit's campaign just opened.
func campaignReport() *secureauditv1.Report {
	r := sampleReport()
	for i, s := range r.GetAccessReview() {
		s.Key = strings.Repeat(string(rune('a'+i)), 16)
	}
	at := r.GetGeneratedAt().AsTime()
	bob := &secureauditv1.Decider{Issuer: "https://issuer.example", Subject: "bob", Name: "Bob Approver", Email: "bob@example.com"}
	user := func(n string) *secureauditv1.SubjectRef {
		return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: n}
	}
	crb := func(n string) *secureauditv1.BindingRef {
		return &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: n}
	}
	r.Review = &secureauditv1.ReviewState{
		Campaigns: []*secureauditv1.ReviewCampaign{
			{AuditId: r.GetAuditId(), DueAt: timestamppb.New(at.Add(14 * 24 * time.Hour)), Items: 3, Pending: 3},
			{AuditId: "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", DueAt: timestamppb.New(at.Add(-24 * time.Hour)), Items: 4, Decided: 3, Pending: 1, Revoked: 2, RevokeActions: 1, Verified: 1, StillPresent: 1, Overdue: true},
		},
		Revocations: []*secureauditv1.Revocation{
			{Id: 1, Subject: user("mallory@example.com"), Bindings: []*secureauditv1.BindingRef{crb("mallory-admin")}, State: secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED, DecidedBy: bob, AuditId: "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b"},
			{Id: 3, Subject: user("trent@example.com"), Bindings: []*secureauditv1.BindingRef{crb("trent-admin")}, State: secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED, FindingId: "0a1b2c3d4e5f6071", AuditId: "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b"},
			{Id: 2, Subject: user("eve@example.com"), Bindings: []*secureauditv1.BindingRef{crb("eve-admin")}, Remaining: []*secureauditv1.BindingRef{crb("eve-admin")},
				State: secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT, AuditsSurvived: 2, Severity: secureauditv1.Severity_SEVERITY_CRITICAL, DecidedBy: bob, AuditId: "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b"},
		},
	}
	return r
}

// TestReviewCampaigns: Markdown and HTML show the campaigns (decided,
// pending, revoked, verified; overdue flagged) and the revocations checked
// (verified, and still present with its raised severity); each review item
// names its key; the CSV carries the key column; report.json carries the
// review state.
func TestReviewCampaigns(t *testing.T) {
	r := campaignReport()
	md := string(Markdown(r))
	i := strings.Index(md, "## Review campaigns")
	if i < 0 {
		t.Fatal("Markdown has no Review campaigns section")
	}
	sec := md[i:strings.Index(md, "## Access review")]
	for _, want := range []string{"| `0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b` |", "| 3 of 4 | 1 | 2 (+1 Revoke actions) | 1 | **OVERDUE**", "opened by this audit",
		"Verified: User mallory@example.com no longer holds access through ClusterRoleBinding mallory-admin (revocation 1, decided by Bob Approver \\<bob@example.com\\> at audit",
		"Verified: User trent@example.com no longer holds access through ClusterRoleBinding trent-admin (revocation 3, the report's Revoke action on finding 0a1b2c3d4e5f6071 at audit",
		"**Critical: revocation not carried out**: User eve@example.com still holds access through ClusterRoleBinding eve-admin, 2 audits after its revocation (decided by Bob Approver"} {
		if !strings.Contains(sec, want) {
			t.Errorf("Markdown Review campaigns lacks %q:\n%s", want, sec)
		}
	}
	if !strings.Contains(md, "to sign off; ALERT: 1 earlier campaign overdue; 1 revocation not carried out (see Review campaigns).") {
		t.Error("Markdown executive summary does not name the overdue campaign and the revocation not carried out")
	}
	if !strings.Contains(md, "Item key: `aaaaaaaaaaaaaaaa` (secureaudit review decide aaaaaaaaaaaaaaaa") {
		t.Error("Markdown: the review item does not name its key")
	}
	html, err := HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<section id="campaigns">`, `<span class="flag">overdue</span>; 1 still present`, `<span class="badge critical">Critical</span> <strong>revocation not carried out</strong>`,
		"Item key: <code>aaaaaaaaaaaaaaaa</code>", `to sign off<span class="flag">; ALERT: 1 earlier campaign overdue; 1 revocation not carried out (see Review campaigns)</span>.`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(string(mustCSV(t, r)))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][1] != "key" || len(rows[1][1]) != 16 || strings.Count(rows[1][1], rows[1][1][:1]) != 16 {
		t.Errorf("CSV key column: header %q, first row %q", rows[0][1], rows[1][1])
	}
	sarif, err := SARIF(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, compileSchema(t, "sarif-2.1.0-rtm.5.json"), sarif); err != nil {
		t.Errorf("SARIF with a revocation not carried out does not validate: %v", err)
	}
	if !strings.Contains(string(sarif), `"ruleId": "REVIEW-REVOKE"`) || !strings.Contains(string(sarif), "Revocation not carried out: User eve@example.com still holds access through ClusterRoleBinding eve-admin, 2 audits after") ||
		strings.Count(string(sarif), `"ruleId": "REVIEW-REVOKE"`) != 1 {
		t.Error("SARIF has not exactly one REVIEW-REVOKE result for the revocation still present")
	}
	js := string(mustJSON(t, r))
	if !strings.Contains(js, `"review"`) || !strings.Contains(js, `"REVOCATION_STATE_STILL_PRESENT"`) || !strings.Contains(js, `"stillPresent"`) {
		t.Error("report.json lacks the review state")
	}
	// Without a review state, no section.
	if strings.Contains(string(Markdown(sampleReport())), "## Review campaigns") {
		t.Error("a report without review state has a Review campaigns section")
	}
}

func mustCSV(t *testing.T, r *secureauditv1.Report) []byte {
	t.Helper()
	b, err := CSV(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, r *secureauditv1.Report) []byte {
	t.Helper()
	b, err := JSON(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRevocationNotCarriedOutInOSCAL: a revocation found still present is
// an observation of its own and keeps SOC 2 CC6.2 not satisfied, even in
// a report with no finding citing CC6.2; verified revocations alone leave
// it satisfied.
func TestRevocationNotCarriedOutInOSCAL(t *testing.T) {
	state := func(r *secureauditv1.Report) (string, string) {
		t.Helper()
		data, err := OSCAL(r)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			AR struct {
				Results []struct {
					Observations []struct {
						Description string `json:"description"`
					} `json:"observations"`
					Findings []struct {
						Target struct {
							TargetID string `json:"target-id"`
							Status   struct {
								State string `json:"state"`
							} `json:"status"`
						} `json:"target"`
					} `json:"findings"`
				} `json:"results"`
			} `json:"assessment-results"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		var obs string
		for _, o := range doc.AR.Results[0].Observations {
			if strings.Contains(o.Description, "was not carried out") {
				obs = o.Description
			}
		}
		for _, f := range doc.AR.Results[0].Findings {
			if f.Target.TargetID == "soc2-cc6.2" {
				return f.Target.Status.State, obs
			}
		}
		return "absent", obs
	}
	r := campaignReport()
	r.Findings = nil // nothing else cites CC6.2
	got, obs := state(r)
	if got != "not-satisfied" || !strings.Contains(obs, "eve@example.com") || !strings.Contains(obs, "ClusterRoleBinding eve-admin") {
		t.Errorf("with a revocation still present: soc2-cc6.2 %s, observation %q", got, obs)
	}
	r.Review.Revocations = r.Review.Revocations[:2] // verified ones only
	if got, obs := state(r); got == "not-satisfied" || obs != "" {
		t.Errorf("with verified revocations only: soc2-cc6.2 %s, observation %q", got, obs)
	}
}
