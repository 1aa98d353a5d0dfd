package render

import (
	"fmt"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// acceptedView is a finding a risk acceptance matched: in "Accepted risks"
// (Status accepted), or back in the main list, flagged.
type acceptedView struct {
	Finding      *findingView
	AcceptanceID int64
	Status       string // accepted, acceptance expired, grant changed since acceptance
	Detail       string
	Reason       string
	Ticket       string
	Expires      string
	RequestedBy  string
	ApprovedBy   string
	// DaysLeft is how many whole days the acceptance has left at the
	// report's time; Expiring is true within the report's notice period.
	DaysLeft int
	Expiring bool
}

// statusText is how an acceptance's status reads in every format.
func statusText(s secureauditv1.AcceptanceStatus) string {
	switch s {
	case secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED:
		return "accepted"
	case secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_EXPIRED:
		return "acceptance expired"
	case secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED:
		return "grant changed since acceptance"
	}
	return "unknown"
}

// deciderText names a person of an acceptance.
func deciderText(d *secureauditv1.Decider) string {
	switch {
	case d == nil:
		return "nobody"
	case d.GetName() != "" && d.GetEmail() != "":
		return d.GetName() + " <" + d.GetEmail() + ">"
	case d.GetName() != "":
		return d.GetName()
	case d.GetEmail() != "":
		return d.GetEmail()
	}
	return "sub " + d.GetSubject()
}

func newAcceptedView(n int, r *secureauditv1.Report, af *secureauditv1.AcceptedFinding) acceptedView {
	a := af.GetAcceptance()
	av := acceptedView{
		Finding:      newFindingView(n, af.GetFinding()),
		AcceptanceID: a.GetId(),
		Status:       statusText(af.GetStatus()),
		Detail:       af.GetDetail(),
		Reason:       a.GetReason(),
		Ticket:       a.GetTicket(),
		Expires:      "never",
		RequestedBy:  deciderText(a.GetRequestedBy()),
		ApprovedBy:   deciderText(a.GetApprovedBy()),
	}
	av.Finding.Anchor = fmt.Sprintf("accepted-%d", n)
	if a.GetExpiresAt() != nil {
		exp := a.GetExpiresAt().AsTime()
		av.Expires = exp.UTC().Format(time.DateOnly)
		if r.GetGeneratedAt() != nil {
			left := exp.Sub(r.GetGeneratedAt().AsTime())
			av.DaysLeft = int(left / (24 * time.Hour))
			av.Expiring = af.GetStatus() == secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED && left <= time.Duration(r.GetExpiringWithinDays())*24*time.Hour
		}
	}
	return av
}

// acceptedOf fills the view's accepted risks, the findings back from an
// acceptance, and those expiring within the notice period.
func acceptedOf(v *view, r *secureauditv1.Report) {
	v.ExpiringDays = int(r.GetExpiringWithinDays())
	for i, af := range r.GetAcceptedRisks() {
		av := newAcceptedView(i+1, r, af)
		v.Accepted = append(v.Accepted, av)
		if av.Expiring {
			v.Expiring = append(v.Expiring, av)
		}
	}
	if len(r.GetReturnedRisks()) > 0 {
		v.Returned = map[string]acceptedView{}
	}
	for i, af := range r.GetReturnedRisks() {
		v.Returned[af.GetFinding().GetId()] = newAcceptedView(i+1, r, af)
	}
}

// returnedFor is the acceptance a main finding's entry is back from, if
// any of its hits is.
func (v view) returnedFor(f *findingView) (acceptedView, bool) {
	if a, ok := v.Returned[f.ID]; ok {
		return a, true
	}
	if f.Entry != nil {
		for _, h := range f.Entry.Hits {
			if a, ok := v.Returned[h.ID]; ok {
				return a, true
			}
		}
	}
	return acceptedView{}, false
}

// acceptanceLine says in one sentence who accepted what until when.
func (a acceptedView) acceptanceLine() string {
	return fmt.Sprintf("acceptance %d, requested by %s, approved by %s, ticket %s, until %s: %s", a.AcceptanceID, a.RequestedBy, a.ApprovedBy, a.Ticket, a.Expires, a.Reason)
}

// writeAccepted writes "Accepted risks": the findings approved acceptances
// keep out of the main list, those expiring within the notice period first.
// Nothing when there are none.
func writeAccepted(b textWriter, v view) {
	if len(v.Accepted) == 0 {
		return
	}
	b.WriteString("## Accepted risks\n\n")
	fmt.Fprintf(b, "%s left the main list: an approved risk acceptance covers %s, with the grant unchanged since. "+
		"%s still %s against %s controls (not satisfied, risk accepted), and %s back to the main list, flagged, when %s acceptance expires or the grant changes.\n\n",
		plural(len(v.Accepted), "One finding", fmt.Sprintf("%d findings", len(v.Accepted))), plural(len(v.Accepted), "it", "them"),
		plural(len(v.Accepted), "It", "They"), plural(len(v.Accepted), "counts", "count"), plural(len(v.Accepted), "its", "their"),
		plural(len(v.Accepted), "comes", "come"), plural(len(v.Accepted), "its", "an"))
	if len(v.Expiring) > 0 {
		fmt.Fprintf(b, "**Expiring within %d days:**\n\n", v.ExpiringDays)
		for _, a := range v.Expiring {
			fmt.Fprintf(b, "- %s for %s: acceptance %d expires %s (%s left; ticket %s)\n", md(a.Finding.RuleID), md(a.Finding.Subject), a.AcceptanceID, a.Expires, plural(a.DaysLeft, "1 day", fmt.Sprintf("%d days", a.DaysLeft)), md(a.Ticket))
		}
		b.WriteString("\n")
	}
	b.WriteString("| # | Severity | Rule | Subject | Access | Ticket | Until | Requested by | Approved by | Justification |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, a := range v.Accepted {
		f := a.Finding
		fmt.Fprintf(b, "| %d | %s | %s %s | %s | %s | %s | %s | %s | %s | %s |\n", i+1, f.Severity, md(f.RuleID), md(f.Title), md(f.Subject), md(f.Access),
			md(a.Ticket), a.Expires, md(a.RequestedBy), md(a.ApprovedBy), md(a.Reason))
	}
	b.WriteString("\nFinding IDs: ")
	for i, a := range v.Accepted {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%d `%s` (controls: %s)", i+1, a.Finding.ID, mdList(a.Finding.ControlTexts, "none"))
	}
	b.WriteString(".\n\n")
}
