package render

import (
	"fmt"
	"strings"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// campaignView is an access review campaign as the report shows it: the
// audit it reviews, its due date, and how many items are decided,
// pending, revoked and verified.
type campaignView struct {
	AuditID      string
	Current      bool
	Due          string
	Items        uint32
	Decided      uint32
	Pending      uint32
	Revoked      uint32
	Actions      uint32
	Verified     uint32
	StillPresent uint32
	Overdue      bool
}

// revocationView is a revocation this audit checked.
type revocationView struct {
	ID            int64
	Subject       string
	Bindings      string
	Remaining     string
	Verified      bool
	Severity      string
	SeverityClass string
	Survived      uint32
	// Origin says who asked for it: "decided by PERSON", or the report's
	// Revoke action on a finding.
	Origin    string
	DecidedAt string
}

func campaignsOf(v *view, r *secureauditv1.Report) {
	for _, c := range r.GetReview().GetCampaigns() {
		v.Campaigns = append(v.Campaigns, campaignView{AuditID: c.GetAuditId(), Current: c.GetAuditId() == r.GetAuditId(),
			Due: c.GetDueAt().AsTime().UTC().Format(time.DateOnly), Items: c.GetItems(), Decided: c.GetDecided(), Pending: c.GetPending(),
			Revoked: c.GetRevoked(), Actions: c.GetRevokeActions(), Verified: c.GetVerified(), StillPresent: c.GetStillPresent(), Overdue: c.GetOverdue()})
	}
	for _, x := range r.GetReview().GetRevocations() {
		rv := revocationView{ID: x.GetId(), Subject: subjectText(x.GetSubject()), Verified: x.GetState() == secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED,
			Survived: x.GetAuditsSurvived(), Origin: "decided by " + deciderText(x.GetDecidedBy()), DecidedAt: x.GetAuditId()}
		if x.GetDecidedBy() == nil {
			rv.Origin = "the report's Revoke action on finding " + x.GetFindingId()
		}
		var bs, left []string
		for _, b := range x.GetBindings() {
			bs = append(bs, bindingText(b))
		}
		for _, b := range x.GetRemaining() {
			left = append(left, bindingText(b))
		}
		rv.Bindings, rv.Remaining = strings.Join(bs, ", "), strings.Join(left, ", ")
		if !rv.Verified {
			rv.Severity = severityText(x.GetSeverity())
			rv.SeverityClass = strings.ToLower(rv.Severity)
		}
		v.Revocations = append(v.Revocations, rv)
	}
}

// state is a campaign's state in one phrase.
func (c campaignView) state() string {
	s := fmt.Sprintf("%d of %d decided, %d pending, %d revoked, %d verified", c.Decided, c.Items, c.Pending, c.Revoked, c.Verified)
	if c.Actions > 0 {
		s += fmt.Sprintf(" (%d revocations from the report's Revoke actions)", c.Actions)
	}
	if c.StillPresent > 0 {
		s += fmt.Sprintf(", %d still present", c.StillPresent)
	}
	return s
}

// writeCampaigns writes "Review campaigns": the state of the cluster's
// access review campaigns (this audit's just opened, and earlier ones), and
// the revocations this audit checked, a still-present one as a finding of
// its own. Nothing when the report has no review state.
func writeCampaigns(b textWriter, v view) {
	if len(v.Campaigns)+len(v.Revocations) == 0 {
		return
	}
	b.WriteString("## Review campaigns\n\n")
	b.WriteString("Each audit opens a campaign over its access review items; decisions are recorded with `secureaudit review decide` or `secureaudit review import report.csv` by a person with a verified ID token. Every Revoke is checked at the next audit of the cluster.\n\n")
	if len(v.Campaigns) > 0 {
		b.WriteString("| Audit | Due | Decided | Pending | Revoked | Verified | State |\n|---|---|---|---|---|---|---|\n")
		for _, c := range v.Campaigns {
			state := "open"
			switch {
			case c.Overdue:
				state = "**OVERDUE**: " + c.state()
			case c.Current:
				state = "opened by this audit"
			case c.Pending == 0:
				state = "complete"
			}
			revoked := fmt.Sprint(c.Revoked)
			if c.Actions > 0 {
				revoked += fmt.Sprintf(" (+%d Revoke actions)", c.Actions)
			}
			fmt.Fprintf(b, "| `%s` | %s | %d of %d | %d | %s | %d | %s |\n", c.AuditID, c.Due, c.Decided, c.Items, c.Pending, revoked, c.Verified, state)
		}
		b.WriteString("\n")
	}
	if len(v.Revocations) > 0 {
		b.WriteString("**Revocations checked by this audit:**\n\n")
		for _, x := range v.Revocations {
			if x.Verified {
				fmt.Fprintf(b, "- Verified: %s no longer holds access through %s (revocation %d, %s at audit `%s`).\n", md(x.Subject), md(x.Bindings), x.ID, md(x.Origin), x.DecidedAt)
			} else {
				fmt.Fprintf(b, "- **%s: revocation not carried out**: %s still holds access through %s, %d %s after its revocation (%s at audit `%s`; revocation %d). Remove the binding; the severity rises with every audit it survives.\n",
					x.Severity, md(x.Subject), md(x.Remaining), x.Survived, plural(int(x.Survived), "audit", "audits"), md(x.Origin), x.DecidedAt, x.ID)
			}
		}
		b.WriteString("\n")
	}
}

// reviewAlerts is what the executive summary adds to the access review
// line: overdue campaigns and revocations not carried out, "" when none.
func (v view) reviewAlerts() string {
	overdue, still := 0, 0
	for _, c := range v.Campaigns {
		if c.Overdue {
			overdue++
		}
	}
	for _, x := range v.Revocations {
		if !x.Verified {
			still++
		}
	}
	var parts []string
	if overdue > 0 {
		parts = append(parts, fmt.Sprintf("ALERT: %d %s overdue", overdue, plural(overdue, "earlier campaign", "earlier campaigns")))
	}
	if still > 0 {
		parts = append(parts, fmt.Sprintf("%d %s not carried out", still, plural(still, "revocation", "revocations")))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ") + " (see Review campaigns)"
}

// ReviewAlerts is reviewAlerts for the HTML template.
func (v view) ReviewAlerts() string { return v.reviewAlerts() }

// RevocationRuleID is the SARIF rule of a revocation not carried out.
const RevocationRuleID = "REVIEW-REVOKE"

func sarifRevocationRule() sarifRule {
	text := "An access review decided to revoke this access, or the report asked to, and the audit after still found the grant: the revocation was not carried out. Its severity rises with every audit it survives (high, then critical). Remove the binding, or the subject from it."
	return sarifRule{
		ID:                   RevocationRuleID,
		Name:                 "RevocationNotCarriedOut",
		ShortDescription:     sarifText{Text: "revoked access still present"},
		FullDescription:      sarifText{Text: text},
		Help:                 sarifHelp{Text: text, Markdown: mdText(text)},
		DefaultConfiguration: sarifRuleConfig{Level: "error"},
		Properties: sarifRuleProperty{
			Tags:             []string{"security", "rbac", "access-review", "CC6.2"},
			SecuritySeverity: securitySeverity(secureauditv1.Severity_SEVERITY_HIGH),
			Precision:        "very-high",
		},
	}
}

// sarifRevocations returns one result per revocation this audit found
// still present, at the binding that still grants the access.
func sarifRevocations(r *secureauditv1.Report) []sarifResult {
	var out []sarifResult
	for _, x := range r.GetReview().GetRevocations() {
		if x.GetState() != secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT || len(x.GetRemaining()) == 0 {
			continue
		}
		origin := "decided by " + deciderText(x.GetDecidedBy())
		if x.GetDecidedBy() == nil {
			origin = "the report's Revoke action on finding " + x.GetFindingId()
		}
		var left []string
		for _, b := range x.GetRemaining() {
			left = append(left, bindingText(b))
		}
		sev := x.GetSeverity()
		if sev == secureauditv1.Severity_SEVERITY_UNSPECIFIED {
			sev = secureauditv1.Severity_SEVERITY_HIGH
		}
		// Against a previous audit: new at the first audit that finds it
		// still present, unchanged after.
		baseline := ""
		if r.GetHistory() != nil {
			baseline = "unchanged"
			if x.GetAuditsSurvived() <= 1 {
				baseline = "new"
			}
		}
		out = append(out, sarifResult{
			BaselineState: baseline,
			RuleID:        RevocationRuleID,
			Level:         sarifLevel(sev),
			Message: sarifText{Text: fmt.Sprintf("Revocation not carried out: %s still holds access through %s, %d %s after its revocation (%s at audit %s; revocation %d).",
				subjectText(x.GetSubject()), strings.Join(left, ", "), x.GetAuditsSurvived(), plural(int(x.GetAuditsSurvived()), "audit", "audits"), origin, x.GetAuditId(), x.GetId())},
			Locations:           []sarifLocation{sarifLocationFor(r.GetCluster(), &secureauditv1.Finding{Subject: x.GetSubject(), Binding: x.GetRemaining()[0]})},
			PartialFingerprints: map[string]string{FingerprintKey: fmt.Sprintf("revocation/%d", x.GetId())},
			Properties: sarifResultProps{
				Severity:    severityText(sev),
				Action:      ActionRevoke,
				Subject:     subjectText(x.GetSubject()),
				Controls:    []string{"CC6.2"},
				Remediation: "remove " + strings.Join(left, ", ") + " or the subject from it",
			},
		})
	}
	return out
}
