package audit

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// hanging is an rbac-agent that accepts Collect and answers only when the
// call ends.
type hanging struct {
	secureauditv1.UnimplementedRBACServiceServer
	calls chan struct{}
}

func (h *hanging) Collect(_ *secureauditv1.CollectRequest, stream grpc.ServerStreamingServer[secureauditv1.CollectResponse]) error {
	h.calls <- struct{}{}
	<-stream.Context().Done()
	return stream.Context().Err()
}

func hangingAgent(t *testing.T) (*hanging, Agents) {
	t.Helper()
	p := rpctest.NewPKI(t)
	manifest, err := scopes.Manifest(identity.RBACAgent)
	if err != nil {
		t.Fatal(err)
	}
	h := &hanging{calls: make(chan struct{}, 8)}
	addr := p.Serve(t, identity.RBACAgent, manifest, func(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, h) })
	return h, Agents{RBAC: secureauditv1.NewRBACServiceClient(p.Dial(t, addr, identity.RBACAgent, identity.Orchestrator))}
}

func newReplica(t *testing.T, db *storage.DB, name string, agents Agents) (*Runner, *Service) {
	t.Helper()
	st := store.New(db)
	r := NewRunner(agents, st, rpctest.Logger(t), noop.NewTracerProvider().Tracer("test"))
	r.SetReplica(name)
	r.SetLease(3*time.Second, 50*time.Millisecond)
	return r, NewService(r, st, rpctest.Logger(t))
}

// TestReplicasShareTheQueue: two replicas on one PostgreSQL database, each
// with its own pool. An audit queued on A (which runs no worker) is claimed
// and run by B; a cancel asked of A reaches B through the database, and A's
// CancelAudit returns the cancelled audit.
func TestReplicasShareTheQueue(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	agent, agents := hangingAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, svcA := newReplica(t, storagetest.Open(t, dsn), "A", agents)
	runnerB, _ := newReplica(t, storagetest.Open(t, dsn), "B", agents)
	done := make(chan struct{})
	go func() { runnerB.Run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()

	resp, err := svcA.StartAudit(ctx, &secureauditv1.StartAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetAudit().GetId()
	select {
	case <-agent.calls:
	case <-time.After(30 * time.Second):
		t.Fatal("replica B did not start the audit queued on A within 30s")
	}
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	got, err := svcA.CancelAudit(cctx, &secureauditv1.CancelAuditRequest{AuditId: id})
	if err != nil {
		t.Fatalf("CancelAudit on A: %v", err)
	}
	if got.GetAudit().GetState() != secureauditv1.AuditState_AUDIT_STATE_CANCELLED {
		t.Errorf("audit %s, want CANCELLED", got.GetAudit().GetState())
	}
	events, err := store.New(storagetest.Open(t, dsn)).Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.GetSequence() != uint32(i+1) {
			t.Errorf("event %d has sequence %d: the replicas' events must continue one sequence", i, e.GetSequence())
		}
	}
	if len(events) < 3 {
		t.Errorf("%d events (queued on A, run and cancelled on B), want at least 3", len(events))
	}
}

// TestExpiredLeaseFailsTheAudit: a running audit whose replica died is left
// alone by another replica while the lease holds (that replica's start-up
// included), and failed with the reason once it expired.
func TestExpiredLeaseFailsTheAudit(t *testing.T) { storagetest.Run(t, testExpiredLeaseFailsTheAudit) }

func testExpiredLeaseFailsTheAudit(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	st := store.New(db)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a := &secureauditv1.Audit{Id: "00000000-0000-4000-8000-000000000001", State: secureauditv1.AuditState_AUDIT_STATE_PENDING, CreatedAt: timestamppb.New(t0)}
	if err := st.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	const lease = 30 * time.Second
	if c, err := st.ClaimAudit(ctx, "dead-replica", t0, lease); err != nil || c.GetId() != a.GetId() {
		t.Fatalf("claim: %v, %v", c, err)
	}
	a.State = secureauditv1.AuditState_AUDIT_STATE_RUNNING
	if err := st.UpdateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	r, _ := newReplica(t, db, "new-replica", Agents{})
	r.SetLease(lease, time.Second)
	now := t0.Add(lease / 2)
	r.now = func() time.Time { return now }
	r.reap(ctx) // what a replica starting now does first
	if got, err := st.GetAudit(ctx, a.GetId()); err != nil || got.GetState() != secureauditv1.AuditState_AUDIT_STATE_RUNNING {
		t.Fatalf("before the lease expired: %s, %v; want RUNNING", got.GetState(), err)
	}
	now = t0.Add(lease + time.Second)
	r.reap(ctx)
	got, err := st.GetAudit(ctx, a.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED {
		t.Fatalf("after the lease expired: %s, want FAILED", got.GetState())
	}
	for _, w := range []string{"dead-replica", "stopped renewing its lease", "start a new audit"} {
		if !strings.Contains(got.GetError(), w) {
			t.Errorf("error %q does not say %q", got.GetError(), w)
		}
	}
}

// TestWorkersRunClustersInParallel: a runner with two workers runs audits
// of two clusters at once (the hanging agent is called twice before either
// ends), while a second audit of the first cluster stays unclaimed.
func TestWorkersRunClustersInParallel(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		agent, agents := hangingAgent(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r, svc := newReplica(t, db, "A", agents)
		done := make(chan struct{})
		go func() { r.Run(ctx, 2); close(done) }()
		defer func() { cancel(); <-done }()
		for _, c := range []string{"prod", "dev", "prod"} {
			if _, err := svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: c}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 2 {
			select {
			case <-agent.calls:
			case <-time.After(30 * time.Second):
				t.Fatalf("%d of 2 audits started within 30s: the workers do not run two clusters at once", i)
			}
		}
		// Both workers are busy: a third claim finds the second prod audit
		// waiting for the first.
		if a, err := store.New(db).ClaimAudit(ctx, "B", time.Now(), time.Minute); err != nil || a != nil {
			t.Errorf("another replica claimed %v, %v; want nothing while prod is held", a.GetId(), err)
		}
	})
}

// claimingStore is the real store with a hook run as soon as an audit is
// created: another replica's worker claiming it at that moment.
type claimingStore struct {
	*store.Store
	created func(a *secureauditv1.Audit)
}

func (s claimingStore) CreateAudit(ctx context.Context, a *secureauditv1.Audit, events ...*secureauditv1.AuditEvent) error {
	if err := s.Store.CreateAudit(ctx, a, events...); err != nil {
		return err
	}
	s.created(a)
	return nil
}

// TestClaimedAtOnceKeepsOneSequence: a replica that claims an audit the
// moment another queued it (before the queuing replica did anything more)
// continues the audit's events after the stored "audit queued": every
// event is stored, one sequence, none lost to a clash of sequence numbers
// (as happened when the queued event was written after the audit).
func TestClaimedAtOnceKeepsOneSequence(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		runnerB, _ := newReplica(t, db, "B", Agents{})
		runnerA, _ := newReplica(t, db, "A", Agents{})
		runnerA.store = claimingStore{Store: store.New(db), created: func(a *secureauditv1.Audit) {
			claimed, err := runnerB.store.ClaimAuditID(ctx, a.GetId(), "B", time.Now(), time.Minute)
			if err != nil || claimed == nil {
				t.Errorf("replica B could not claim the new audit: %v", err)
				return
			}
			if err := runnerB.adopt(ctx, claimed); err != nil {
				t.Error(err)
				return
			}
			runnerB.event(ctx, claimed, "collecting")
		}}
		a := &secureauditv1.Audit{Id: "a-claimed", State: secureauditv1.AuditState_AUDIT_STATE_PENDING, CreatedAt: timestamppb.Now()}
		if err := runnerA.Enqueue(ctx, a); err != nil {
			t.Fatal(err)
		}
		events, err := store.New(db).Events(ctx, a.GetId(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, e := range events {
			got = append(got, e.GetMessage())
			if e.GetSequence() != uint32(i+1) {
				t.Errorf("event %d has sequence %d", i, e.GetSequence())
			}
		}
		if strings.Join(got, "|") != "audit queued|collecting" {
			t.Errorf("events %q, want the queued event then B's", got)
		}
	})
}
