package store

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// BenchmarkFleetHeads reads the heads of a fleet of 10 clusters that never
// succeeded, each with 600 failed audits carrying a 2 KiB error: the
// history FleetHeads must not read past its 100 newest audits per
// cluster, nor keep.
func BenchmarkFleetHeads(b *testing.B) {
	for _, backend := range storagetest.Backends {
		b.Run(backend, func(b *testing.B) {
			s := New(storagetest.Open(b, storagetest.DSN(b, backend)))
			ctx := context.Background()
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var names []string
			n := 0
			for c := range 10 {
				name := fmt.Sprintf("aks-%02d", c)
				names = append(names, name)
				if err := s.CreateCluster(ctx, &secureauditv1.Cluster{Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent"}); err != nil {
					b.Fatal(err)
				}
				for range 600 {
					n++
					a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: name, CreatedAt: timestamppb.New(at.Add(time.Duration(n) * time.Second)),
						State: secureauditv1.AuditState_AUDIT_STATE_FAILED, Error: strings.Repeat("e", 2048)}
					if err := s.CreateAudit(ctx, a); err != nil {
						b.Fatal(err)
					}
				}
			}
			// What the heads keep: the heap held by one result.
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			held, err := s.FleetHeads(ctx, names, 10)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			heldB := float64(after.HeapAlloc) - float64(before.HeapAlloc)
			runtime.KeepAlive(held)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				heads, err := s.FleetHeads(ctx, names, 10)
				if err != nil {
					b.Fatal(err)
				}
				if len(heads) != len(names) {
					b.Fatalf("%d heads, want %d", len(heads), len(names))
				}
			}
			b.ReportMetric(heldB, "held-B")
		})
	}
}
