package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

func entry(i int) evidence.Entry {
	return evidence.Entry{Kind: evidence.KindControlResult, Control: "test", Criteria: []string{"CC6.2"},
		Subject: fmt.Sprint(i), Outcome: evidence.OutcomeFail, Summary: fmt.Sprintf("entry %d", i)}
}

// TestAppendAllSameLog: entries appended with AppendAll, after some
// appended one by one, give the same log as all of them appended one by
// one with the same clock and key: the same records (times included), the
// same head (the signed checkpoint is byte for byte the same) and the same
// proofs, and the bundle verifies. Once with a clock that moves on, once
// with one that stands still (each entry then one nanosecond after the
// previous one, in a batch as across appends).
func TestAppendAllSameLog(t *testing.T) { backends(t, testAppendAllSameLog) }

func testAppendAllSameLog(t *testing.T, backend string) {
	ctx := context.Background()
	for _, still := range []bool{false, true} {
		t.Run(fmt.Sprintf("still=%v", still), func(t *testing.T) {
			dir := t.TempDir()
			var logs []*Log
			for range 2 {
				c := &clock{t: t0}
				now := c.now
				if still {
					now = func() time.Time { return t0 }
				}
				l, err := New(ctx, storagetest.Open(t, storagetest.DSN(t, backend)), dir+"/keys/evidence.key", WithClock(now))
				if err != nil {
					t.Fatal(err)
				}
				logs = append(logs, l)
			}
			const before, batch = 3, 21
			for i := range before + batch {
				if _, err := logs[0].Append(ctx, entry(i)); err != nil {
					t.Fatal(err)
				}
			}
			var es []evidence.Entry
			for i := range before {
				if _, err := logs[1].Append(ctx, entry(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := before; i < before+batch; i++ {
				es = append(es, entry(i))
			}
			idx, err := logs[1].AppendAll(ctx, es)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range idx {
				if x != int64(before+i) {
					t.Fatalf("AppendAll returned indexes %v, want %d to %d", idx, before, before+batch-1)
				}
			}
			var got [2][]byte
			for i, l := range logs {
				b, err := l.Export(ctx, time.Time{}, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				res, err := evidence.Verify(b, l.PublicKey())
				if err != nil {
					t.Fatalf("log %d: Verify: %v", i, err)
				}
				if res.TreeSize != before+batch {
					t.Errorf("log %d: verified tree of %d, want %d", i, res.TreeSize, before+batch)
				}
				if got[i], err = json.Marshal(b); err != nil {
					t.Fatal(err)
				}
			}
			if string(got[0]) != string(got[1]) {
				t.Errorf("AppendAll's log differs from the one appended one by one:\n%s\n%s", got[1], got[0])
			}
		})
	}
}

// TestAppendAllWith: write's changes and the entries it returns commit
// together; when write fails, or an entry cannot be appended, neither is
// stored.
func TestAppendAllWith(t *testing.T) { backends(t, testAppendAllWith) }

func testAppendAllWith(t *testing.T, backend string) {
	ctx := context.Background()
	l := open(t, storagetest.DSN(t, backend), t.TempDir())
	if _, err := l.db.ExecContext(ctx, `CREATE TABLE marks (n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	mark := func(n int, fail error) func(context.Context, *storage.Tx) ([]evidence.Entry, error) {
		return func(ctx context.Context, tx *storage.Tx) ([]evidence.Entry, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO marks (n) VALUES (?)`, n); err != nil {
				return nil, err
			}
			return []evidence.Entry{entry(n), entry(n + 1)}, fail
		}
	}
	if idx, err := l.AppendAllWith(ctx, mark(0, nil)); err != nil || fmt.Sprint(idx) != "[0 1]" {
		t.Fatalf("AppendAllWith = %v, %v; want [0 1]", idx, err)
	}
	boom := errors.New("boom")
	if _, err := l.AppendAllWith(ctx, mark(2, boom)); !errors.Is(err, boom) {
		t.Fatalf("AppendAllWith with a failing write: %v, want %v", err, boom)
	}
	bad := func(ctx context.Context, tx *storage.Tx) ([]evidence.Entry, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO marks (n) VALUES (?)`, 4); err != nil {
			return nil, err
		}
		return []evidence.Entry{entry(4), {Kind: evidence.KindControlResult, Data: json.RawMessage(`{`)}}, nil
	}
	if _, err := l.AppendAllWith(ctx, bad); err == nil {
		t.Fatal("AppendAllWith appended an entry whose data is not JSON")
	}
	var marks int
	if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM marks`).Scan(&marks); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Size(ctx); err != nil || n != 2 || marks != 1 {
		t.Errorf("log of %d entries (%v) and %d marks, want 2 and 1: a failed AppendAllWith kept something", n, err, marks)
	}
	if idx, err := l.Append(ctx, entry(9)); err != nil || idx != 2 {
		t.Errorf("Append after the failures = %d, %v; want index 2", idx, err)
	}
}

// TestConcurrentAppendAll: two replicas on one PostgreSQL database, one
// appending batches with AppendAll, the other single entries with Append,
// concurrently: every index is appended once, each batch's indexes are
// consecutive, and the log verifies.
func TestConcurrentAppendAll(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	logs := []*Log{open(t, dsn, dir), open(t, dsn, dir)}
	const batches, batch, singles = 12, 9, 60
	var mu sync.Mutex
	seen := map[int64]int{}
	note := func(idx ...int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range idx {
			seen[x]++
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range batches {
			var es []evidence.Entry
			for j := range batch {
				es = append(es, entry(i*batch+j))
			}
			idx, err := logs[0].AppendAll(context.Background(), es)
			if err != nil {
				t.Error(err)
				return
			}
			for j := range idx {
				if idx[j] != idx[0]+int64(j) {
					t.Errorf("batch %d got indexes %v, not consecutive", i, idx)
				}
			}
			note(idx...)
		}
	})
	wg.Go(func() {
		for i := range singles {
			idx, err := logs[1].Append(context.Background(), entry(1000+i))
			if err != nil {
				t.Error(err)
				return
			}
			note(idx)
		}
	})
	wg.Wait()
	checkEveryIndexOnce(t, seen, batches*batch+singles, logs)
}
