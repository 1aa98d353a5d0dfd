package paths_test

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/services/risk-agent/synth"
)

var sizes = []int{10_000, 100_000}

// cpuTime is the process's user+system CPU time: on a shared machine it
// says more than wall time (GC workers included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func engine(s *snapshot.Snapshot) int {
	a := rules.Analyze(s)
	return len(a.Findings()) + len(paths.Find(a))
}

// peakHeap runs f once and returns the highest HeapInuse seen while it ran,
// sampled every millisecond (the snapshot, live throughout, included).
func peakHeap(f func()) uint64 {
	runtime.GC()
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak
}

// BenchmarkEngine measures the whole deterministic engine in process: every
// rule of the catalogue plus the escalation-path search, over a synthetic
// snapshot already built. It reports the objects, the findings and the
// peak heap of one extra run.
func BenchmarkEngine(b *testing.B) {
	for _, n := range sizes {
		chunk := synth.Cluster(1, n)
		s := snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil)
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var findings int
			start, n := cpuTime(), 0
			for b.Loop() {
				findings = engine(s)
				n++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
			b.ReportMetric(float64(synth.Objects(chunk)), "objects")
			b.ReportMetric(float64(findings), "findings")
			b.ReportMetric(float64(peakHeap(func() { engine(s) }))/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkBuildAndEngine adds snapshot indexing (snapshot.Build, with
// aggregation) to the engine: what the risk-agent does after the last
// chunk arrives.
func BenchmarkBuildAndEngine(b *testing.B) {
	for _, n := range sizes {
		chunk := synth.Cluster(1, n)
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			start, n := cpuTime(), 0
			for b.Loop() {
				engine(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil))
				n++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
			b.ReportMetric(float64(peakHeap(func() { engine(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil)) }))/(1<<20), "peak-heap-MiB")
		})
	}
}
