package render

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// acceptedReport is the sample report where an approved acceptance covers
// its first finding (expiring in 10 days: within the 14-day notice) and the
// grant of its second changed since its acceptance.
func acceptedReport() *secureauditv1.Report {
	r := sampleReport()
	at := r.GetGeneratedAt().AsTime()
	acc := func(id int64, f *secureauditv1.Finding, days int) *secureauditv1.Acceptance {
		return &secureauditv1.Acceptance{Id: id, Cluster: r.GetCluster(), RuleId: f.GetRuleId(), Subject: f.GetSubject(), Binding: f.GetBinding(), Role: f.GetRole(),
			Reason: "break-glass group, alerting on use", Ticket: "SEC-42", ExpiresAt: timestamppb.New(at.Add(time.Duration(days) * 24 * time.Hour)),
			RequestedBy: &secureauditv1.Decider{Issuer: "https://issuer.example", Subject: "alice", Name: "Alice Operator", Email: "alice@example.com"},
			ApprovedBy:  &secureauditv1.Decider{Issuer: "https://issuer.example", Subject: "bob", Name: "Bob Approver", Email: "bob@example.com"}}
	}
	accepted, back := r.Findings[0], r.Findings[1]
	r.Findings = r.Findings[1:]
	r.AcceptedRisks = []*secureauditv1.AcceptedFinding{{Finding: accepted, Acceptance: acc(7, accepted, 10), Status: secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED}}
	r.ReturnedRisks = []*secureauditv1.AcceptedFinding{{Finding: back, Acceptance: acc(8, back, 60), Status: secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED,
		Detail: "grant changed since acceptance: binding ops-2, was ops"}}
	r.ExpiringWithinDays = 14
	return r
}

// TestAcceptedRisks: in every format, an accepted finding leaves the main
// list for "Accepted risks" (listed ahead of its expiry), a finding whose
// grant changed is flagged in the main list, SARIF suppresses the accepted
// one with its justification, OSCAL keeps its control not satisfied (risk
// accepted), and both machine formats still validate.
func TestAcceptedRisks(t *testing.T) {
	r := acceptedReport()
	id, backID := r.GetAcceptedRisks()[0].GetFinding().GetId(), r.GetReturnedRisks()[0].GetFinding().GetId()

	md := string(Markdown(r))
	sec := md[strings.Index(md, "## Accepted risks"):]
	if !strings.Contains(md, "## Accepted risks") || !strings.Contains(sec, "**Expiring within 14 days:**") || !strings.Contains(sec, "acceptance 7 expires") ||
		!strings.Contains(sec, "Alice Operator") || !strings.Contains(sec, "Bob Approver") || !strings.Contains(sec, "`"+id+"`") {
		t.Errorf("Markdown accepted risks section:\n%s", sec[:min(len(sec), 2000)])
	}
	if main := md[:strings.Index(md, "## Accepted risks")]; strings.Contains(main, id) {
		t.Errorf("the accepted finding %s is still in the main part of the Markdown report", id)
	}
	if !strings.Contains(md, "**Back from a risk acceptance: grant changed since acceptance.** grant changed since acceptance: binding ops-2, was ops") {
		t.Error("Markdown: the finding whose grant changed is not flagged")
	}

	html, err := HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if h := string(html); !strings.Contains(h, "<h2>Accepted risks</h2>") || !strings.Contains(h, "<dt>Risk acceptance</dt><dd><span class=\"flag\">grant changed since acceptance</span>") || !strings.Contains(h, "Expiring within 14 days") {
		t.Error("HTML: no Accepted risks section or no flag on the returned finding")
	}

	sarif, err := SARIF(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, compileSchema(t, "sarif-2.1.0-rtm.5.json"), sarif); err != nil {
		t.Errorf("SARIF does not validate: %v", err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				Fingerprints map[string]string `json:"partialFingerprints"`
				Suppressions []struct{ Kind, Status, Justification string }
				Properties   struct{ Acceptance string }
			}
		}
	}
	if err := json.Unmarshal(sarif, &log); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, res := range log.Runs[0].Results {
		switch res.Fingerprints[FingerprintKey] {
		case id:
			found++
			if len(res.Suppressions) != 1 || res.Suppressions[0].Kind != "external" || res.Suppressions[0].Status != "accepted" ||
				!strings.Contains(res.Suppressions[0].Justification, "break-glass group, alerting on use (risk acceptance 7, ticket SEC-42, requested by Alice Operator <alice@example.com>, approved by Bob Approver <bob@example.com>") {
				t.Errorf("SARIF accepted result suppressions = %+v", res.Suppressions)
			}
		case backID:
			found++
			if len(res.Suppressions) != 0 || !strings.HasPrefix(res.Properties.Acceptance, "grant changed since acceptance") {
				t.Errorf("SARIF returned result: suppressions %+v, acceptance %q", res.Suppressions, res.Properties.Acceptance)
			}
		}
	}
	if found != 2 {
		t.Errorf("SARIF has %d of the accepted and returned results, want 2", found)
	}

	oscal, err := OSCAL(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, compileSchema(t, "oscal-assessment-results-1.1.2-subset.json"), oscal); err != nil {
		t.Errorf("OSCAL does not validate: %v", err)
	}
	var doc struct {
		AR struct {
			Results []struct {
				Observations []struct {
					Props   []oscalProp `json:"props"`
					Remarks string      `json:"remarks"`
				} `json:"observations"`
				Findings []struct {
					Description string      `json:"description"`
					Props       []oscalProp `json:"props"`
					Target      struct {
						TargetID string      `json:"target-id"`
						Status   oscalStatus `json:"status"`
					} `json:"target"`
				} `json:"findings"`
			} `json:"results"`
		} `json:"assessment-results"`
	}
	if err := json.Unmarshal(oscal, &doc); err != nil {
		t.Fatal(err)
	}
	accepted := false
	for _, o := range doc.AR.Results[0].Observations {
		for _, p := range o.Props {
			if p.Name == "acceptance-status" && p.Value == "accepted" && strings.HasPrefix(o.Remarks, "Risk accepted (deviation approved): break-glass group") {
				accepted = true
			}
		}
	}
	if !accepted {
		t.Error("OSCAL: no observation of the accepted risk marked accepted with its deviation")
	}
	controls := controlsOf(r.GetAcceptedRisks()[0].GetFinding())
	if len(controls) == 0 {
		t.Fatal("the sample's first finding has no controls")
	}
	for _, f := range doc.AR.Results[0].Findings {
		if f.Target.TargetID != strings.ToLower(controls[0]) {
			continue
		}
		if f.Target.Status.State != "not-satisfied" || !strings.Contains(f.Description, "not satisfied, risk accepted") {
			t.Errorf("OSCAL control %s: %s, %q; want not-satisfied, risk accepted", f.Target.TargetID, f.Target.Status.State, f.Description)
		}
	}

	csv, err := CSV(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(csv), "accepted risk: "+r.GetAcceptedRisks()[0].GetFinding().GetRuleId()+" finding "+id+", acceptance 7 until") {
		t.Errorf("CSV: the subject's row does not name its accepted risk:\n%s", csv)
	}

	js, err := JSON(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"acceptedRisks"`) || !strings.Contains(string(js), `"returnedRisks"`) || !strings.Contains(string(js), `"ACCEPTANCE_STATUS_GRANT_CHANGED"`) {
		t.Error("report.json lacks acceptedRisks or returnedRisks")
	}
}
