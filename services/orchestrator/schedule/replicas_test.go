package schedule

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/storage"
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

// TestStaleClaimTakenOver: a replica that claims a schedule's run and dies
// before moving the schedule on must not stop the schedule for ever.
// Within StaleClaim another replica leaves the claim alone; after it, one
// replica takes the run over (of two ticking together), starts the audit
// the dead one never started, and moves the schedule on, saying so. When
// the dead replica had started its audit, the run is moved on without a
// second one.
func TestStaleClaimTakenOver(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		var mu sync.Mutex
		clock := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
		st := store.New(db)
		var starts []string
		start := func(replica string) StartFunc {
			return func(ctx context.Context, cluster string, _ bool) (*secureauditv1.Audit, error) {
				mu.Lock()
				starts = append(starts, replica)
				n := len(starts)
				mu.Unlock()
				a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: cluster,
					State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, CreatedAt: timestamppb.New(now())}
				return a, st.CreateAudit(ctx, a)
			}
		}
		a := New(st, start("replica-a"), rpctest.Logger(t), WithReplica("replica-a"), WithClock(now))
		b := New(st, start("replica-b"), rpctest.Logger(t), WithReplica("replica-b"), WithClock(now))
		c := New(st, start("replica-c"), rpctest.Logger(t), WithReplica("replica-c"), WithClock(now))
		if _, err := a.Create(ctx, &secureauditv1.Schedule{Name: "prod-hourly", Cluster: "prod", Cron: "@hourly"}); err != nil {
			t.Fatal(err)
		}
		due := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
		advance(time.Hour)
		// replica-a claims the run and dies before starting or saving.
		if ok, err := st.ClaimScheduleRun(ctx, "prod-hourly", due, "replica-a", now()); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		advance(StaleClaim / 2)
		if n, err := b.Tick(ctx); err != nil || n != 0 {
			t.Fatalf("a fresh claim was taken over: %d started, %v", n, err)
		}
		advance(StaleClaim)
		var wg sync.WaitGroup
		for _, s := range []*Scheduler{b, c} {
			wg.Go(func() {
				if _, err := s.Tick(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(starts) != 1 || starts[0] == "replica-a" {
			t.Fatalf("audits started after the takeover: %v, want one by replica-b or replica-c", starts)
		}
		list, err := st.ListSchedules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := list[0]; !got.GetNextRun().AsTime().Equal(due.Add(time.Hour)) || !strings.Contains(got.GetLastMessage(), "taken over from replica replica-a") {
			t.Errorf("after the takeover: next run %s, message %q", got.GetNextRun().AsTime(), got.GetLastMessage())
		}

		// The next run: replica-a claims it, starts the audit, and dies
		// before moving the schedule on: the takeover starts none.
		advance(time.Hour - StaleClaim*3/2)
		due = due.Add(time.Hour)
		if ok, err := st.ClaimScheduleRun(ctx, "prod-hourly", due, "replica-a", now()); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if _, err := start("replica-a")(ctx, "prod", false); err != nil {
			t.Fatal(err)
		}
		advance(StaleClaim * 2)
		if n, err := b.Tick(ctx); err != nil || n != 0 || len(starts) != 2 {
			t.Fatalf("takeover after the dead replica's audit: %d started, %v, starts %v", n, err, starts)
		}
		list, _ = st.ListSchedules(ctx)
		if got := list[0]; !got.GetNextRun().AsTime().Equal(due.Add(time.Hour)) || !strings.Contains(got.GetLastMessage(), "was started after this run was claimed") {
			t.Errorf("after the second takeover: next run %s, message %q", got.GetNextRun().AsTime(), got.GetLastMessage())
		}
	})
}
