package audit

import (
	"context"
	"fmt"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Reviewer opens an audit's access review campaign (review.Registry). Key
// keys the report's review items before the report goes to the
// report-agent; Open, called once the report-agent named the findings
// whose report action is Revoke, checks the cluster's tracked revocations
// against the review items, tracks the grants of those findings and sets
// report.review.
type Reviewer interface {
	Key(report *secureauditv1.Report)
	Open(ctx context.Context, auditID, cluster string, report *secureauditv1.Report, main []*secureauditv1.Finding, revoke []string) error
}

// ReviewWith makes each audit open a review campaign over its access
// review and verify the revocations decided at earlier audits.
func (r *Runner) ReviewWith(v Reviewer) { r.reviews = v }

// review opens the audit's campaign, when a Reviewer is set.
func (r *Runner) review(ctx context.Context, a *secureauditv1.Audit, report *secureauditv1.Report, main []*secureauditv1.Finding, revoke []string) error {
	if r.reviews == nil {
		return nil
	}
	if err := r.reviews.Open(ctx, a.GetId(), report.GetCluster(), report, main, revoke); err != nil {
		return fmt.Errorf("access review campaign: %w", err)
	}
	if st := report.GetReview(); st != nil {
		var verified, still int
		for _, v := range st.GetRevocations() {
			if v.GetState() == secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED {
				verified++
			} else {
				still++
			}
		}
		if verified+still > 0 {
			r.event(ctx, a, fmt.Sprintf("%d revocations verified, %d still present", verified, still))
		}
	}
	return nil
}
