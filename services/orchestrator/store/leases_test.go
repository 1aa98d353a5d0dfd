package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

func TestLeases(t *testing.T) { storagetest.Run(t, testLeases) }

func testLeases(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const lease = 30 * time.Second
	for i := 1; i <= 3; i++ {
		a := audit(i, secureauditv1.AuditState_AUDIT_STATE_PENDING)
		a.Cluster = fmt.Sprint("cluster-", i) // one per cluster: none waits for another
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	id := func(i int) string { return audit(i, 0).GetId() }
	if n, err := s.Pending(ctx); err != nil || n != 3 {
		t.Errorf("Pending = %d, %v; want 3", n, err)
	}
	claim := func(owner string, at time.Time) string {
		t.Helper()
		a, err := s.ClaimAudit(ctx, owner, at, lease)
		if err != nil {
			t.Fatal(err)
		}
		return a.GetId()
	}
	if got := claim("A", now); got != id(1) {
		t.Fatalf("A claimed %q, want the oldest %s", got, id(1))
	}
	if got := claim("B", now); got != id(2) {
		t.Fatalf("B claimed %q, want %s", got, id(2))
	}
	if got := claim("B", now); got != id(3) {
		t.Fatalf("B claimed %q, want %s", got, id(3))
	}
	if got := claim("A", now.Add(lease/2)); got != "" {
		t.Fatalf("A claimed %q while every audit is held", got)
	}
	if held, _, err := s.RenewLease(ctx, id(1), "B", now.Add(lease)); err != nil || held {
		t.Errorf("B renewed A's lease: held=%v, %v", held, err)
	}
	if held, cancel, err := s.RenewLease(ctx, id(1), "A", now.Add(lease)); err != nil || !held || cancel {
		t.Errorf("A's renewal: held=%v cancel=%v, %v; want held, no cancel", held, cancel, err)
	}
	if ok, err := s.RequestCancel(ctx, id(1)); err != nil || !ok {
		t.Fatalf("RequestCancel = %v, %v", ok, err)
	}
	if _, cancel, err := s.RenewLease(ctx, id(1), "A", now.Add(2*lease)); err != nil || !cancel {
		t.Errorf("A's renewal after a cancel request: cancel=%v, %v; want true", cancel, err)
	}

	// Audit 2 runs on B, which stops renewing.
	running := audit(2, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	if err := s.UpdateAudit(ctx, running); err != nil {
		t.Fatal(err)
	}
	if exp, err := s.ClaimExpired(ctx, "A", now.Add(lease/2), lease); err != nil || len(exp) != 0 {
		t.Fatalf("ClaimExpired before the lease ran out = %v, %v; want none", exp, err)
	}
	exp, err := s.ClaimExpired(ctx, "A", now.Add(lease+time.Second), lease)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 || exp[0].Audit.GetId() != id(2) || exp[0].Holder != "B" || !exp[0].Expired.Equal(now.Add(lease)) {
		t.Fatalf("ClaimExpired = %+v; want audit 2 held by B until %s", exp, now.Add(lease))
	}
	if held, _, err := s.RenewLease(ctx, id(2), "B", now.Add(2*lease)); err != nil || held {
		t.Errorf("B renewed after A took audit 2: held=%v, %v", held, err)
	}
	// Audit 3 is pending on B, which stops renewing: A takes it over.
	if got := claim("A", now.Add(lease+time.Second)); got != id(3) {
		t.Errorf("A took over %q, want the pending %s", got, id(3))
	}
	// Claiming one audit by id: not while another replica holds it.
	if err := s.CreateAudit(ctx, audit(4, secureauditv1.AuditState_AUDIT_STATE_PENDING)); err != nil {
		t.Fatal(err)
	}
	if a, err := s.ClaimAuditID(ctx, id(4), "B", now, lease); err != nil || a.GetId() != id(4) {
		t.Fatalf("ClaimAuditID = %v, %v", a, err)
	}
	if a, err := s.ClaimAuditID(ctx, id(4), "A", now, lease); err != nil || a != nil {
		t.Errorf("A claimed audit 4 held by B: %v, %v", a, err)
	}

	due := now.Add(time.Hour)
	for i, want := range []bool{true, false} {
		if got, err := s.ClaimScheduleRun(ctx, "nightly", due, fmt.Sprint("replica-", i), now); err != nil || got != want {
			t.Errorf("claim %d of the run due %s = %v, %v; want %v", i, due, got, err, want)
		}
	}
	if got, err := s.ClaimScheduleRun(ctx, "nightly", due.Add(24*time.Hour), "replica-1", now); err != nil || !got {
		t.Errorf("claim of the next run = %v, %v; want true", got, err)
	}
}

// TestConcurrentReplicas: two stores on one PostgreSQL database (two pools,
// as two replicas have), each claiming with four workers at once: every
// audit (each of its own cluster) is claimed exactly once, and a schedule's
// run once.
func TestConcurrentReplicas(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	replicas := []*Store{New(storagetest.Open(t, dsn)), New(storagetest.Open(t, dsn))}
	const n = 60
	for i := 1; i <= n; i++ {
		a := audit(i, secureauditv1.AuditState_AUDIT_STATE_PENDING)
		a.Cluster = fmt.Sprint("cluster-", i)
		if err := replicas[0].CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	var mu sync.Mutex
	claimed := map[string][]string{}
	runs := 0
	var wg sync.WaitGroup
	for r, s := range replicas {
		for w := range 4 {
			owner := fmt.Sprintf("replica-%d/worker-%d", r, w)
			wg.Go(func() {
				if ok, err := s.ClaimScheduleRun(ctx, "nightly", now.Truncate(time.Hour), owner, now); err != nil {
					t.Error(err)
				} else if ok {
					mu.Lock()
					runs++
					mu.Unlock()
				}
				for {
					a, err := s.ClaimAudit(ctx, owner, now, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if a == nil {
						return
					}
					mu.Lock()
					claimed[a.GetId()] = append(claimed[a.GetId()], owner)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d audits claimed, want %d", len(claimed), n)
	}
	for id, owners := range claimed {
		if len(owners) != 1 {
			t.Errorf("audit %s claimed by %v", id, owners)
		}
	}
	if runs != 1 {
		t.Errorf("the schedule's run was claimed %d times, want once", runs)
	}
}

// TestOneAuditPerCluster: a pending audit waits while another audit of its
// cluster is held, on both backends; on PostgreSQL eight workers of two
// stores claiming at once from ten pending audits of each of three clusters
// hold exactly one per cluster.
func TestOneAuditPerCluster(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		s := New(db)
		now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		for i, c := range []string{"prod", "prod", "dev"} {
			a := audit(i+1, secureauditv1.AuditState_AUDIT_STATE_PENDING)
			a.Cluster = c
			if err := s.CreateAudit(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for range 3 {
			a, err := s.ClaimAudit(ctx, "A", now, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, a.GetCluster())
		}
		if fmt.Sprint(got) != "[prod dev ]" {
			t.Errorf("claimed clusters %q, want prod, dev and then nothing while prod is held", got)
		}
		done := audit(1, secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED)
		if err := s.UpdateAudit(ctx, done); err != nil {
			t.Fatal(err)
		}
		if a, err := s.ClaimAudit(ctx, "A", now, time.Minute); err != nil || a.GetId() != audit(2, 0).GetId() {
			t.Errorf("after the first prod audit finished: claimed %v, %v; want the second", a.GetId(), err)
		}
	})

	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	replicas := []*Store{New(storagetest.Open(t, dsn)), New(storagetest.Open(t, dsn))}
	clusters := []string{"prod", "dev", "staging"}
	for i := range 30 {
		a := audit(i+1, secureauditv1.AuditState_AUDIT_STATE_PENDING)
		a.Cluster = clusters[i%3]
		if err := replicas[0].CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	var mu sync.Mutex
	held := map[string]int{}
	var wg sync.WaitGroup
	for r, s := range replicas {
		for w := range 4 {
			wg.Go(func() {
				for range 5 { // more tries than there are clusters
					a, err := s.ClaimAudit(ctx, fmt.Sprintf("replica-%d/worker-%d", r, w), now, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if a != nil {
						mu.Lock()
						held[a.GetCluster()]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	for _, c := range clusters {
		if held[c] != 1 {
			t.Errorf("%d audits of %s held at once, want 1 (held: %v)", held[c], c, held)
		}
	}
}
