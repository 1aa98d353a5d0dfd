package review

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/rpctest"
	evlog "secureaudit.dev/services/orchestrator/evidence"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// BenchmarkOpen opens the campaign of an audit of a cluster with 2,000
// open revocations (the report's Revoke actions of an earlier audit) whose
// grants are all still present in an access review of 2,000 subjects, on
// each backend: each audit checks every revocation (one state change and
// one evidence entry each, still present, so the next audit checks them
// again), records overdue campaigns and opens its own. This is the
// review's share of an audit's critical path (the report waits for it).
func BenchmarkOpen(b *testing.B) {
	const revocations = 2000
	for _, backend := range storagetest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			db := storagetest.Open(b, storagetest.DSN(b, backend))
			st := store.New(db)
			log, err := evlog.New(ctx, db, filepath.Join(b.TempDir(), "evidence.key"))
			if err != nil {
				b.Fatal(err)
			}
			reg := New(db, log, st, nil, rpctest.Logger(b))
			var review []*secureauditv1.ReviewSubject
			var main []*secureauditv1.Finding
			var revoke []string
			for i := range revocations {
				s := user(fmt.Sprintf("user%d@example.com", i))
				g := grant(fmt.Sprintf("b%d", i))
				review = append(review, &secureauditv1.ReviewSubject{Subject: s, Grants: []*secureauditv1.AccessGrant{g}})
				id := fmt.Sprintf("f%d", i)
				main = append(main, &secureauditv1.Finding{Id: id, Subject: s, Binding: g.GetBinding()})
				revoke = append(revoke, id)
			}
			n := 0
			open := func(main []*secureauditv1.Finding, revoke []string) {
				id := fmt.Sprintf("%08x-5a8e-4d57-9a45-6c2d0e1f2a3b", n)
				n++
				if err := st.CreateAudit(ctx, &secureauditv1.Audit{Id: id, Cluster: "aks-prod", State: secureauditv1.AuditState_AUDIT_STATE_RUNNING, CreatedAt: timestamppb.New(time.Now())}); err != nil {
					b.Fatal(err)
				}
				report := &secureauditv1.Report{AuditId: id, Cluster: "aks-prod", AccessReview: review}
				if err := reg.Open(ctx, id, "aks-prod", report, main, revoke); err != nil {
					b.Fatal(err)
				}
				if got := len(report.GetReview().GetRevocations()); n > 1 && got != revocations {
					b.Fatalf("audit %d checked %d revocations, want %d", n, got, revocations)
				}
			}
			open(main, revoke) // tracks the 2,000 revocations
			b.ResetTimer()
			for b.Loop() {
				open(nil, nil)
			}
		})
	}
}
