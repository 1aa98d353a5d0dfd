package inject

import (
	"slices"
	"strings"
	"testing"
)

// FuzzScan feeds arbitrary strings to the injection scanner, seeded with
// both corpora (testdata/injections.txt and testdata/benign.txt). It must
// never panic or hang, and its answer has the documented shape: at most one
// hit per category, in category order, each with a known category and a
// reason; the same string gives the same answer; and a string that is
// detected stays detected with benign text around it.
// `go test` runs the seeds; `go test -fuzz FuzzScan` explores.
func FuzzScan(f *testing.F) {
	for _, c := range []struct {
		path     string
		withRule bool
	}{{"testdata/injections.txt", true}, {"testdata/benign.txt", false}} {
		for _, s := range readCorpus(f, c.path, c.withRule) {
			f.Add(s.text)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		hits := Scan(s)
		for i, h := range hits {
			if h.Category.String() == "unknown" {
				t.Errorf("hit %d has an unknown category %d", i, h.Category)
			}
			if h.Reason == "" {
				t.Errorf("hit %d (%s) has no reason", i, h.Category)
			}
			if i > 0 && hits[i-1].Category >= h.Category {
				t.Errorf("hits out of category order or repeated: %v", hits)
			}
		}
		again := Scan(s)
		if !slices.Equal(hits, again) {
			t.Errorf("Scan is not deterministic: %v, then %v", hits, again)
		}
		if len(hits) > 0 && !strings.ContainsRune(s, 0) {
			if got := Scan("Team notes.\n" + s + "\nEnd of notes."); len(got) == 0 {
				t.Errorf("detected alone (%v) but not inside benign text", hits)
			}
		}
	})
}
