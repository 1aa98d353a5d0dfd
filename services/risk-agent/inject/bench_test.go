package inject

import (
	"path/filepath"
	"testing"
)

// benchCorpus scans every string of the named corpora per iteration and
// reports the cost per string.
func benchCorpus(b *testing.B, names []string) {
	var texts []string
	for _, n := range names {
		for _, s := range readCorpus(b, filepath.Join("testdata", "corpora", n+".txt"), true) {
			texts = append(texts, s.text)
		}
	}
	if len(texts) == 0 {
		b.Fatal("no strings")
	}
	b.ResetTimer()
	for b.Loop() {
		for _, s := range texts {
			Scan(s)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(texts)), "ns/string")
}

// BenchmarkScanBenign is the cost per string of what clusters and
// directories hold: names, labels, annotations, last-applied JSON,
// descriptions.
func BenchmarkScanBenign(b *testing.B) { benchCorpus(b, benignCorpora) }

// BenchmarkScanPublic is the cost per string of the public injection
// corpora (long prose, up to several kilobytes a string).
func BenchmarkScanPublic(b *testing.B) { benchCorpus(b, publicCorpora) }
