package evidence

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is an in-memory log for tests.
type memLog struct {
	records [][]byte
	hashes  []tlog.Hash
}

func (m *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) Records(lo, hi int64) ([][]byte, error) { return m.records[lo:hi], nil }

func (m *memLog) append(t testing.TB, e Entry) {
	t.Helper()
	rec, err := e.Record()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := tlog.StoredHashes(int64(len(m.records)), rec, m)
	if err != nil {
		t.Fatal(err)
	}
	m.records = append(m.records, rec)
	m.hashes = append(m.hashes, hs...)
}

func (m *memLog) checkpoint(t testing.TB, signer note.Signer) string {
	t.Helper()
	root, err := tlog.TreeHash(int64(len(m.records)), m)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := Sign(Checkpoint{Origin: "secureaudit.test/evidence", Size: int64(len(m.records)), Hash: root}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func newKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// fixture returns a log of 10 entries one minute apart, alternating criteria.
func fixture(t testing.TB) (*memLog, note.Signer, string) {
	t.Helper()
	m := &memLog{}
	criteria := [][]string{{"CC5.2"}, {"CC4.1", "CC9.2"}, {"CC6.2"}}
	for i := range 10 {
		m.append(t, Entry{
			Time: t0.Add(time.Duration(i) * time.Minute), Kind: KindControlResult, Control: "test",
			Criteria: criteria[i%3], Subject: fmt.Sprintf("s%d", i), Outcome: OutcomePass,
			Summary: fmt.Sprintf("entry %d", i), Data: []byte(`{"n":` + fmt.Sprint(i) + `}`),
		})
	}
	s, vkey := newKey(t, "secureaudit-test")
	return m, s, vkey
}

func bundle(t testing.TB, m *memLog, s note.Signer, vkey string, lo, hi int64, from, to time.Time) *Bundle {
	t.Helper()
	b, err := NewBundle(m, vkey, m.checkpoint(t, s), int64(len(m.records)), lo, hi, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyIntact(t *testing.T) {
	m, s, vkey := fixture(t)
	tests := []struct {
		name     string
		lo, hi   int64
		from, to time.Time
	}{
		{"whole log", 0, 10, time.Time{}, time.Time{}},
		{"middle window", 3, 7, t0.Add(3 * time.Minute), t0.Add(7 * time.Minute)},
		{"from start", 0, 4, time.Time{}, t0.Add(4 * time.Minute)},
		{"to end", 6, 10, t0.Add(6 * time.Minute), time.Time{}},
		{"empty window", 5, 5, t0.Add(4*time.Minute + time.Second), t0.Add(4*time.Minute + 2*time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bundle(t, m, s, vkey, tc.lo, tc.hi, tc.from, tc.to)
			res, err := Verify(b, vkey)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Entries != int(tc.hi-tc.lo) || res.TreeSize != 10 {
				t.Errorf("got %d entries of %d, want %d of 10", res.Entries, res.TreeSize, tc.hi-tc.lo)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	m, s, vkey := fixture(t)
	other, otherKey := newKey(t, "secureaudit-test")
	window := func() *Bundle { return bundle(t, m, s, vkey, 3, 7, t0.Add(3*time.Minute), t0.Add(7*time.Minute)) }
	whole := func() *Bundle { return bundle(t, m, s, vkey, 0, 10, time.Time{}, time.Time{}) }
	tests := []struct {
		name      string
		b         func() *Bundle
		key       string
		wantIndex int64 // -1: not an entry error
		wantErr   string
	}{
		{"edited entry", func() *Bundle {
			b := window()
			b.Entries[1].Record = strings.Replace(b.Entries[1].Record, `"outcome":"pass"`, `"outcome":"fail"`, 1)
			return b
		}, vkey, 4, "altered"},
		{"dropped middle entry", func() *Bundle {
			b := window()
			b.Entries = append(b.Entries[:2], b.Entries[3:]...)
			return b
		}, vkey, 5, "missing"},
		{"dropped first entry of window", func() *Bundle {
			b := window()
			b.Entries = b.Entries[1:]
			return b
		}, vkey, 3, "missing"},
		{"dropped last entry of window", func() *Bundle {
			b := window()
			b.Entries = b.Entries[:len(b.Entries)-1]
			return b
		}, vkey, 6, "missing"},
		{"dropped last entry of log", func() *Bundle {
			b := whole()
			b.Entries = b.Entries[:9]
			return b
		}, vkey, 9, "missing"},
		{"dropped first entry of log", func() *Bundle {
			b := whole()
			b.Entries = b.Entries[1:]
			return b
		}, vkey, 0, "missing"},
		{"dropped entry relabelled to hide the gap", func() *Bundle {
			b := window()
			b.Entries = append(b.Entries[:2], b.Entries[3:]...)
			b.Entries[2].Index = 5
			return b
		}, vkey, 5, "not in the signed tree"},
		{"reordered entries", func() *Bundle {
			b := window()
			b.Entries[1], b.Entries[2] = b.Entries[2], b.Entries[1]
			return b
		}, vkey, 5, "out of order"},
		{"reordered records keeping indexes", func() *Bundle {
			b := window()
			b.Entries[1].Record, b.Entries[2].Record = b.Entries[2].Record, b.Entries[1].Record
			return b
		}, vkey, 4, "not in the signed tree"},
		{"window narrowed to hide an entry", func() *Bundle {
			b := window()
			b.Entries = b.Entries[:3]
			b.After = &b.Entries[len(b.Entries)-1]
			return b
		}, vkey, 5, "inside it"},
		{"forged checkpoint root", func() *Bundle {
			b := window()
			lines := strings.SplitN(b.Checkpoint, "\n", 4)
			lines[2] = strings.Repeat("A", 43) + "="
			b.Checkpoint = strings.Join(lines, "\n")
			return b
		}, vkey, -1, "checkpoint signature does not verify"},
		{"forged checkpoint size", func() *Bundle {
			b := window()
			b.Checkpoint = strings.Replace(b.Checkpoint, "\n10\n", "\n7\n", 1)
			return b
		}, vkey, -1, "checkpoint signature does not verify"},
		{"re-signed by another key, key pinned", func() *Bundle {
			b := window()
			b.PublicKey = otherKey
			b.Checkpoint = m.checkpoint(t, other)
			return b
		}, vkey, -1, "not the trusted key"},
		{"key swapped without re-signing", func() *Bundle {
			b := window()
			b.PublicKey = otherKey
			return b
		}, "", -1, "checkpoint signature does not verify"},
		{"criterion index edited", func() *Bundle {
			b := window()
			b.Criteria["CC6.2"] = nil
			return b
		}, vkey, -1, "criterion index for CC6.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.b(), tc.key)
			if err == nil {
				t.Fatal("Verify accepted a tampered bundle")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
			var ee *EntryError
			switch {
			case tc.wantIndex < 0 && errors.As(err, &ee):
				t.Errorf("got entry error %v, want a bundle-level error", err)
			case tc.wantIndex >= 0 && !errors.As(err, &ee):
				t.Errorf("got %v, want an error naming entry %d", err, tc.wantIndex)
			case tc.wantIndex >= 0 && ee.Index != tc.wantIndex:
				t.Errorf("error names entry %d, want %d: %v", ee.Index, tc.wantIndex, err)
			}
		})
	}
}

func TestEntryCheck(t *testing.T) {
	good := Entry{Time: t0, Kind: KindAlert, Control: "scope", Criteria: []string{"CC5.2"}, Summary: "s"}
	tests := []struct {
		name   string
		change func(*Entry)
	}{
		{"no time", func(e *Entry) { e.Time = time.Time{} }},
		{"no kind", func(e *Entry) { e.Kind = "" }},
		{"no control", func(e *Entry) { e.Control = "" }},
		{"no criteria", func(e *Entry) { e.Criteria = nil }},
		{"no summary", func(e *Entry) { e.Summary = "" }},
		{"bad data", func(e *Entry) { e.Data = []byte("{") }},
	}
	if _, err := good.Record(); err != nil {
		t.Fatalf("good entry: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.change(&e)
			if _, err := e.Record(); err == nil {
				t.Error("Record accepted an incomplete entry")
			}
		})
	}
}
