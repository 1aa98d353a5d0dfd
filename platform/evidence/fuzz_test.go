package evidence

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzVerifyBundle feeds arbitrary bytes to the bundle parser and verifier,
// seeded with intact bundles of the test log. It must never panic, and a
// bundle it accepts against the trusted key holds a checkpoint signed by that
// key for a tree at least as large as the entries it carries.
func FuzzVerifyBundle(f *testing.F) {
	m, s, vkey := fixture(f)
	for _, w := range [][2]int64{{0, 10}, {3, 7}, {5, 5}} {
		b := bundle(f, m, s, vkey, w[0], w[1], time.Time{}, time.Time{})
		if w[0] == 3 {
			b = bundle(f, m, s, vkey, 3, 7, t0.Add(3*time.Minute), t0.Add(7*time.Minute))
		}
		data, err := json.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		res, err := Verify(b, vkey)
		if err != nil {
			return
		}
		if b.PublicKey != vkey {
			t.Errorf("accepted a bundle signed with %q against the trusted key", b.PublicKey)
		}
		if int64(res.Entries) > res.TreeSize {
			t.Errorf("accepted %d entries of a tree of %d", res.Entries, res.TreeSize)
		}
	})
}
