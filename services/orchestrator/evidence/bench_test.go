package evidence

import (
	"context"
	"testing"

	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// BenchmarkAppend appends to a log of 1,000 entries on each backend (one
// transaction per entry: the next index, the Merkle hashes, the entry; on
// PostgreSQL under the append lock, over loopback TCP).
func BenchmarkAppend(b *testing.B) {
	for _, backend := range storagetest.Backends {
		b.Run(backend, func(b *testing.B) {
			l, err := New(context.Background(), storagetest.Open(b, storagetest.DSN(b, backend)), b.TempDir()+"/evidence.key")
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			e := evidence.Entry{Kind: evidence.KindControlResult, Control: "bench", Criteria: []string{"CC4.1"}, Outcome: evidence.OutcomePass, Summary: "entry"}
			for range 1000 {
				if _, err := l.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := l.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
