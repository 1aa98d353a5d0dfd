package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/history"
)

// enrich adds to the report what the risk-agent's assessment carries for
// it and what only the orchestrator can know: the AKS cluster's
// configuration the directory carried, who holds access (the risk-agent's
// access review, built beside its platform-managed decision and its
// directory index, carried as it is) and what changed since the previous
// audit of the cluster (baseline waits for it, read meanwhile). History is
// best effort: a store error leaves it out and is logged, never failing the
// audit.
func (r *Runner) enrich(ctx context.Context, a *secureauditv1.Audit, report *secureauditv1.Report, dir *directory, main []*secureauditv1.Finding, summary *secureauditv1.AssessSummary, baseline func() (*history.Baseline, error), log *slog.Logger) {
	if dir != nil {
		for _, c := range dir.chunks {
			if c.GetAksCluster() != nil {
				report.AksCluster = c.GetAksCluster() // the first chunk carries it
				break
			}
		}
	}
	report.AccessReview = summary.GetAccessReview()
	report.AccessReviewTruncated = summary.GetAccessReviewTruncated()
	if summary.GetAccessReviewTruncated() {
		r.event(ctx, a, fmt.Sprintf("the access review lists the first %d users and groups only", len(report.GetAccessReview())))
	}
	b, err := baseline()
	var h *secureauditv1.AuditHistory
	if err == nil {
		h, err = b.Since(main)
	}
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

// baseline starts reading what the audit will be compared with (the
// previous audit of its cluster, known once collected, and its findings)
// and returns the function that waits for it: the store is read while the
// agents assess, off the audit's path. The read ends with ctx.
func (r *Runner) baseline(ctx context.Context, a *secureauditv1.Audit) func() (*history.Baseline, error) {
	type result struct {
		b   *history.Baseline
		err error
	}
	done := make(chan result, 1)
	snap := r.snapshot(a)
	go func() {
		b, err := history.LoadBaseline(ctx, r.store, snap)
		done <- result{b, err}
	}()
	return sync.OnceValues(func() (*history.Baseline, error) {
		res := <-done
		return res.b, res.err
	})
}
