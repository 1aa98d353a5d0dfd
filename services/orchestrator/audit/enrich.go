package audit

import (
	"context"
	"fmt"
	"log/slog"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/history"
	"secureaudit.dev/services/orchestrator/review"
)

// enrich adds to the report what only the orchestrator can know: the AKS
// cluster's configuration the directory carried, who holds access (from
// the snapshot and the directory, for the access review) and
// what changed since the previous audit of the cluster. History is best
// effort: a store error leaves it out and is logged, never failing the
// audit.
func (r *Runner) enrich(ctx context.Context, a *secureauditv1.Audit, report *secureauditv1.Report, snap *snapshot, dir *directory, main []*secureauditv1.Finding, managed []*secureauditv1.ManagedGrant, log *slog.Logger) {
	var dirChunks []*secureauditv1.DirectoryChunk
	if dir != nil {
		dirChunks = dir.chunks
		if dirChunks == nil {
			dirChunks = []*secureauditv1.DirectoryChunk{}
		}
	}
	for _, c := range dirChunks {
		if c.GetAksCluster() != nil {
			report.AksCluster = c.GetAksCluster() // the first chunk carries it
			break
		}
	}
	subjects, truncated := review.Subjects(snap.chunks, dirChunks, managed)
	report.AccessReview = subjects
	if truncated {
		r.event(ctx, a, fmt.Sprintf("the access review lists the first %d users and groups only", review.MaxSubjects))
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
