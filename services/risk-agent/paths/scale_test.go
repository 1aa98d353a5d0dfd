package paths_test

import (
	"runtime"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/services/risk-agent/synth"
)

// TestLinearGrowth checks that the engine's work grows linearly with the
// snapshot, by bytes allocated (deterministic, unlike time on a shared
// machine): ten times the objects may cost at most thirteen times the bytes.
func TestLinearGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	bytes := func(n int) float64 {
		s := snapshot.Build([]*secureauditv1.SnapshotChunk{synth.Cluster(1, n)}, nil)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		engine(s)
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc - before.TotalAlloc)
	}
	small, large := bytes(2_000), bytes(20_000)
	if ratio := large / small; ratio > 13 {
		t.Errorf("10x objects cost %.1fx the bytes (%.0f -> %.0f): superlinear", ratio, small, large)
	} else {
		t.Logf("10x objects cost %.1fx the bytes", ratio)
	}
}
