package evidence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// open opens the log in the database dsn with the key in dir.
func open(t *testing.T, dsn, dir string) *Log {
	t.Helper()
	c := &clock{t: t0}
	l, err := New(context.Background(), storagetest.Open(t, dsn), filepath.Join(dir, "keys", "evidence.key"), WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// backends runs f once per storage backend.
func backends(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range storagetest.Backends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		idx, err := l.Append(context.Background(), evidence.Entry{
			Kind: evidence.KindControlResult, Control: "test", Criteria: []string{"CC4.1"},
			Subject: fmt.Sprint(i), Outcome: evidence.OutcomePass, Summary: fmt.Sprintf("entry %d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		if idx != int64(i) {
			t.Fatalf("Append returned index %d, want %d", idx, i)
		}
	}
}

func TestAppendExportVerify(t *testing.T) { backends(t, testAppendExportVerify) }

func testAppendExportVerify(t *testing.T, backend string) {
	l := open(t, storagetest.DSN(t, backend), t.TempDir())
	appendN(t, l, 7)
	ctx := context.Background()
	tests := []struct {
		name     string
		from, to time.Time
		want     []int64
	}{
		{"all", time.Time{}, time.Time{}, []int64{0, 1, 2, 3, 4, 5, 6}},
		// Entry i is stamped t0 + (i+1) minutes.
		{"window", t0.Add(3 * time.Minute), t0.Add(6 * time.Minute), []int64{2, 3, 4}},
		{"from", t0.Add(6 * time.Minute), time.Time{}, []int64{5, 6}},
		{"to", time.Time{}, t0.Add(2 * time.Minute), []int64{0}},
		{"empty", t0.Add(time.Hour), time.Time{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := l.Export(ctx, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range b.Entries {
				got = append(got, e.Index)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("exported entries %v, want %v", got, tc.want)
			}
			res, err := evidence.Verify(b, l.PublicKey())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.TreeSize != 7 || res.Origin != Origin {
				t.Errorf("verified tree %s of %d, want %s of 7", res.Origin, res.TreeSize, Origin)
			}
		})
	}
}

// TestStoreTampering edits and deletes rows behind the log's back; the
// exported bundle no longer verifies and the error names the entry.
func TestStoreTampering(t *testing.T) { backends(t, testStoreTampering) }

func testStoreTampering(t *testing.T, backend string) {
	tests := []struct {
		name           string
		sqlite, postgr string
		want           int64
	}{
		{"edited record",
			`UPDATE evidence_entries SET record = replace(record, '"outcome":"pass"', '"outcome":"fail"') WHERE idx = 3`,
			`UPDATE evidence_entries SET record = convert_to(replace(convert_from(record, 'UTF8'), '"outcome":"pass"', '"outcome":"fail"'), 'UTF8') WHERE idx = 3`, 3},
		{"record swapped",
			`UPDATE evidence_entries SET record = (SELECT record FROM evidence_entries WHERE idx = 5) WHERE idx = 4`,
			`UPDATE evidence_entries SET record = (SELECT record FROM evidence_entries WHERE idx = 5) WHERE idx = 4`, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dsn := storagetest.DSN(t, backend)
			l := open(t, dsn, t.TempDir())
			appendN(t, l, 8)
			// A second pool on the same database: someone with write
			// access to it, behind the log's back.
			db := storagetest.Open(t, dsn)
			query := tc.sqlite
			if db.Dialect() == storage.Postgres {
				query = tc.postgr
			}
			if _, err := db.ExecContext(context.Background(), query); err != nil {
				t.Fatal(err)
			}
			b, err := l.Export(context.Background(), time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = evidence.Verify(b, l.PublicKey())
			var ee *evidence.EntryError
			if !errors.As(err, &ee) || ee.Index != tc.want {
				t.Fatalf("Verify = %v, want an error naming entry %d", err, tc.want)
			}
		})
	}
}

func TestKeyFile(t *testing.T) { backends(t, testKeyFile) }

func testKeyFile(t *testing.T, backend string) {
	dsn := storagetest.DSN(t, backend)
	dir := t.TempDir()
	l := open(t, dsn, dir)
	key := filepath.Join(dir, "keys", "evidence.key")
	info, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	if !strings.HasPrefix(l.PublicKey(), KeyName+"+") {
		t.Errorf("public key %q does not name %s", l.PublicKey(), KeyName)
	}
	appendN(t, l, 2)

	// Reopening keeps the key and the entries; appends continue the tree.
	l2 := open(t, dsn, dir)
	if l2.PublicKey() != l.PublicKey() {
		t.Errorf("reopened log has key %q, want %q", l2.PublicKey(), l.PublicKey())
	}
	if _, err := l2.Append(context.Background(), evidence.Entry{Kind: evidence.KindAlert, Control: "test", Criteria: []string{"CC7.2"}, Summary: "after reopen"}); err != nil {
		t.Fatal(err)
	}
	b, err := l2.Export(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Verify(b, l.PublicKey()); err != nil || len(b.Entries) != 3 {
		t.Errorf("after reopen: %d entries, Verify = %v; want 3 and nil", len(b.Entries), err)
	}
	// Times stay increasing even if the clock goes back.
	if b.Entries[2].Index != 2 {
		t.Errorf("third entry has index %d", b.Entries[2].Index)
	}

	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), storagetest.Open(t, dsn), key); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Open with a world-readable key = %v, want a refusal", err)
	}
}

// TestConcurrentReplicasAppend: two logs on one PostgreSQL database (two
// pools, as two replicas have, with the same key) append from four
// goroutines each: every index from 0 is used exactly once, and the export
// verifies.
func TestConcurrentReplicasAppend(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	logs := []*Log{open(t, dsn, dir), open(t, dsn, dir)}
	const perWorker = 15
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for r, l := range logs {
		for w := range 4 {
			wg.Go(func() {
				for i := range perWorker {
					idx, err := l.Append(context.Background(), evidence.Entry{Kind: evidence.KindControlResult, Control: "test", Criteria: []string{"CC4.1"},
						Subject: fmt.Sprintf("replica %d worker %d", r, w), Outcome: evidence.OutcomePass, Summary: fmt.Sprint(i)})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[idx]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	const total = 2 * 4 * perWorker
	checkEveryIndexOnce(t, seen, total, logs)
	entries, err := logs[0].Entries(context.Background(), 0, total)
	if err != nil {
		t.Fatal(err)
	}
	var prev time.Time
	for i, e := range entries {
		if !e.Time.After(prev) {
			t.Errorf("entry %d at %s, not after the previous %s", i, e.Time, prev)
		}
		prev = e.Time
	}
}

// TestKeyFileModes: PostgreSQL's rule for its server key. A key may be read
// by its owner only, or, owned by root, also by its group (a Kubernetes
// Secret mounted for a non-root container: root-owned, the pod's fsGroup,
// mode 0440); never by others, and never written by its group.
func TestKeyFileModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the cases chown the key: they need root (as CI runs)")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "evidence.key")
	db := storagetest.Open(t, storagetest.DSN(t, "sqlite"))
	if _, err := New(context.Background(), db, key); err != nil { // generates the key
		t.Fatal(err)
	}
	tests := []struct {
		name string
		uid  int
		mode os.FileMode
		ok   bool
	}{
		{"own, 0600", 0, 0o600, true},
		{"own, 0400", 0, 0o400, true},
		{"root, Secret 0440", 0, 0o440, true},
		{"root, 0640", 0, 0o640, true},
		{"root, group may write", 0, 0o660, false},
		{"root, others may read", 0, 0o444, false},
		{"another user, group may read", 65532, 0o640, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chown(key, tc.uid, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(key, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := New(context.Background(), db, key)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "chmod 600")) {
				t.Errorf("New = %v, want a refusal saying chmod 600", err)
			}
		})
	}
}

// TestReplicaWithAnotherKeyRefused: on PostgreSQL a second replica whose
// key differs from the one the log was first opened with is refused,
// naming both public keys; the same key is accepted.
func TestReplicaWithAnotherKeyRefused(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	first := open(t, dsn, dir)
	if again := open(t, dsn, dir); again.PublicKey() != first.PublicKey() {
		t.Fatal("the same key file gave another key")
	}
	other := t.TempDir()
	_, err := New(context.Background(), storagetest.Open(t, dsn), filepath.Join(other, "evidence.key"))
	if err == nil {
		t.Fatal("a replica with a key of its own was accepted")
	}
	for _, w := range []string{first.PublicKey(), filepath.Join(other, "evidence.key"), "the same key file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// checkEveryIndexOnce checks that the appends of two replicas' logs gave
// each index of 0 to total-1 once (seen counts them), and that a bundle
// exported by the second verifies with the first's key as a tree of total.
func checkEveryIndexOnce(t *testing.T, seen map[int64]int, total int, logs []*Log) {
	t.Helper()
	for i := range int64(total) {
		if seen[i] != 1 {
			t.Errorf("index %d appended %d times", i, seen[i])
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct indexes, want %d", len(seen), total)
	}
	b, err := logs[1].Export(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := evidence.Verify(b, logs[0].PublicKey())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.TreeSize != int64(total) {
		t.Errorf("verified tree of %d, want %d", res.TreeSize, total)
	}
}
