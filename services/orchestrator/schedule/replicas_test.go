package schedule

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestReplicasFireOnce: three schedulers on one PostgreSQL database (three
// replicas, each with its own pool) tick together at each of three due
// times: every run starts exactly one audit, and the schedule moves on once.
func TestReplicasFireOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	starts := map[string][]string{} // cluster -> replica that started it, per run
	var schedulers []*Scheduler
	for r := range 3 {
		replica := fmt.Sprint("replica-", r)
		start := func(_ context.Context, cluster string, _ bool) (*secureauditv1.Audit, error) {
			mu.Lock()
			defer mu.Unlock()
			starts[cluster] = append(starts[cluster], replica)
			return &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", len(starts[cluster])), Cluster: cluster}, nil
		}
		schedulers = append(schedulers, New(store.New(storagetest.Open(t, dsn)), start, rpctest.Logger(t), WithReplica(replica), WithClock(now)))
	}
	for _, c := range []string{"prod", "dev"} {
		if _, err := schedulers[0].Create(ctx, &secureauditv1.Schedule{Name: c + "-hourly", Cluster: c, Cron: "@hourly"}); err != nil {
			t.Fatal(err)
		}
	}
	for run := 1; run <= 3; run++ {
		mu.Lock()
		clock = clock.Add(time.Hour)
		mu.Unlock()
		var wg sync.WaitGroup
		for _, s := range schedulers {
			wg.Go(func() {
				if _, err := s.Tick(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, c := range []string{"prod", "dev"} {
			if got := len(starts[c]); got != run {
				t.Errorf("after run %d, %s audits started %d times (%v), want %d", run, c, got, starts[c], run)
			}
		}
	}
	list, err := schedulers[2].List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range list {
		if want := clock.Add(time.Hour); !sc.GetNextRun().AsTime().Equal(want) {
			t.Errorf("%s next run %s, want %s", sc.GetName(), sc.GetNextRun().AsTime(), want)
		}
	}
}
