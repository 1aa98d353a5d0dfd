package inject

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"slices"
	"testing"
)

// Public corpora: injection and jailbreak strings from projects nobody here
// wrote (sources, licences and commits in each file's header and in
// testdata/corpora/README.md). The goal is at least 9 in 10 of every corpus
// detected, on its development half and on its held-out half, and no benign
// string flagged.
var (
	publicCorpora = []string{"garak", "jailbreak_llms", "spikee", "jailbreakbench"}
	benignCorpora = []string{"benign-manifests", "benign-helm", "benign-olm", "benign-entra", "benign-apps"}
)

// goal is the least share of every public corpus that must be detected.
const goal = 0.9

// belowGoal holds the corpora that do not reach the goal yet, each with the
// floor the test holds it to instead: the rate measured when the floor was
// set, rounded down. A corpus leaves this table when it reaches the goal;
// a floor is never lowered to make a change pass.
var belowGoal = map[string]float64{}

// heldOut reports whether a string belongs to the held-out half of its
// corpus: the low bit of the FNV-1a hash of its text. The detector was
// developed against the other half only; the held-out half is for the
// final measurement.
func heldOut(text string) bool {
	h := fnv.New32a()
	h.Write([]byte(text))
	return h.Sum32()&1 == 1
}

type tally struct{ hit, all int }

func (t tally) String() string {
	if t.all == 0 {
		return "0/0"
	}
	return fmt.Sprintf("%d/%d (%.1f%%)", t.hit, t.all, 100*float64(t.hit)/float64(t.all))
}

func (t tally) rate() float64 { return float64(t.hit) / float64(t.all) }

// TestPublicCorpora measures detection per corpus, split and style and fails
// when a corpus half falls below the goal.
func TestPublicCorpora(t *testing.T) {
	for _, name := range publicCorpora {
		t.Run(name, func(t *testing.T) {
			corpus := readCorpus(t, filepath.Join("testdata", "corpora", name+".txt"), true)
			split := map[string]*tally{"development": {}, "held-out": {}}
			styles := map[string]*tally{}
			byRule := map[string]int{}
			// Only the development half's misses are printed: the held-out
			// half is measured, never looked at.
			var missed []sample
			for _, s := range corpus {
				half := "development"
				if heldOut(s.text) {
					half = "held-out"
				}
				st := styles[s.rule]
				if st == nil {
					st = &tally{}
					styles[s.rule] = st
				}
				hits := Scan(s.text)
				split[half].all++
				st.all++
				if len(hits) > 0 {
					split[half].hit++
					st.hit++
					byRule[hits[0].Category.RuleID()]++
				} else if half == "development" {
					missed = append(missed, s)
				}
			}
			total := tally{split["development"].hit + split["held-out"].hit, len(corpus)}
			t.Logf("%s: detected %v; development half %v, held-out half %v", name, total, split["development"], split["held-out"])
			for _, k := range slices.Sorted(mapKeys(styles)) {
				t.Logf("  style %-21s %v", k, styles[k])
			}
			t.Logf("  first rule hit: %v", byRule)
			for _, s := range missed {
				t.Logf("  missed %s.txt:%d [%s] %.160q", name, s.line, s.rule, s.text)
			}
			want := goal
			if floor, ok := belowGoal[name]; ok {
				want = floor
				t.Logf("%s is below the goal of %.0f%%: held to its floor of %.0f%%", name, 100*goal, 100*floor)
			}
			for half, tl := range split {
				if tl.all == 0 || tl.rate() < want {
					t.Errorf("%s %s half: detected %v, want at least %.0f%%", name, half, tl, 100*want)
				}
			}
		})
	}
}

// TestBenignCorpora requires that no string of the benign corpora, taken
// from published manifests, Helm charts, an operator bundle and Microsoft's
// directory samples, is flagged.
func TestBenignCorpora(t *testing.T) {
	for _, name := range benignCorpora {
		t.Run(name, func(t *testing.T) {
			corpus := readCorpus(t, filepath.Join("testdata", "corpora", name+".txt"), true)
			flagged := 0
			for _, s := range corpus {
				if hits := Scan(s.text); len(hits) > 0 {
					flagged++
					t.Errorf("%s.txt:%d [%s] %.200q: flagged %v", name, s.line, s.rule, s.text, hits)
				}
			}
			t.Logf("%s: flagged %d of %d", name, flagged, len(corpus))
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
