package audit

import (
	"context"
	"fmt"
	"log/slog"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/history"
)

// enrich adds to the report what the risk-agent's assessment carries for
// it and what only the orchestrator can know: the AKS cluster's
// configuration the directory carried, who holds access (the risk-agent's
// access review, built beside its platform-managed decision and its
// directory index, carried as it is) and what changed since the previous
// audit of the cluster. History is best effort: a store error leaves it out
// and is logged, never failing the audit.
func (r *Runner) enrich(ctx context.Context, a *secureauditv1.Audit, report *secureauditv1.Report, dir *directory, main []*secureauditv1.Finding, summary *secureauditv1.AssessSummary, log *slog.Logger) {
	if dir != nil {
		for _, c := range dir.chunks {
			if c.GetAksCluster() != nil {
				report.AksCluster = c.GetAksCluster() // the first chunk carries it
				break
			}
		}
	}
	report.AccessReview = summary.GetAccessReview()
	if summary.GetAccessReviewTruncated() {
		r.event(ctx, a, fmt.Sprintf("the access review lists the first %d users and groups only", len(report.GetAccessReview())))
	}
	h, err := history.Since(ctx, r.store, r.snapshot(a), main)
	if err != nil {
		log.WarnContext(ctx, "audit history unavailable", keyError, err.Error())
		return
	}
	if h != nil {
		report.History = h
		r.event(ctx, a, fmt.Sprintf("since audit %s: %d new, %d changed, %d resolved findings",
			h.GetPreviousAuditId(), len(h.GetNewFindingIds()), len(h.GetChanged()), len(h.GetResolved())))
	}
}
