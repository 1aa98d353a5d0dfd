package audit_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/audit"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/store"
)

// stalled is an rbac-agent that accepts Collect and never answers, as a
// stopped process or a deadlocked one looks to its caller.
type stalled struct {
	secureauditv1.UnimplementedRBACServiceServer
	calls chan struct{}
}

func (s *stalled) Collect(_ *secureauditv1.CollectRequest, stream grpc.ServerStreamingServer[secureauditv1.CollectResponse]) error {
	s.calls <- struct{}{}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// TestStalledAgentFailsTheStageAndTheQueueMovesOn: an agent that never
// answers fails the audit when the stage's budget runs out, with a message
// naming the agent, the stage and the flag, and the next queued audit runs.
func TestStalledAgentFailsTheStageAndTheQueueMovesOn(t *testing.T) {
	p := rpctest.NewPKI(t)
	manifest, err := scopes.Manifest(identity.RBACAgent)
	if err != nil {
		t.Fatal(err)
	}
	agent := &stalled{calls: make(chan struct{}, 2)}
	addr := p.Serve(t, identity.RBACAgent, manifest, func(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, agent) })
	conn := p.Dial(t, addr, identity.RBACAgent, identity.Orchestrator)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), rpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := store.New(db)
	runner := audit.NewRunner(audit.Agents{RBAC: secureauditv1.NewRBACServiceClient(conn)}, st, rpctest.Logger(t), noop.NewTracerProvider().Tracer("test"))
	const budget = 500 * time.Millisecond
	runner.SetBudgets(audit.Budgets{Collect: budget})
	svc := audit.NewService(runner, st, rpctest.Logger(t))
	done := make(chan struct{})
	go func() { runner.Run(ctx, 1); close(done) }()
	defer func() { cancel(); <-done }()

	var ids []string
	for range 2 {
		resp, err := svc.StartAudit(ctx, &secureauditv1.StartAuditRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetAudit().GetId())
	}
	for i, id := range ids {
		deadline := time.Now().Add(30 * time.Second)
		var a *secureauditv1.Audit
		for {
			resp, err := svc.GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
			if err != nil {
				t.Fatal(err)
			}
			if a = resp.GetAudit(); a.GetState() == secureauditv1.AuditState_AUDIT_STATE_FAILED || a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("audit %d still %s after 30s", i, a.GetState())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED {
			t.Fatalf("audit %d: %s, want FAILED", i, a.GetState())
		}
		for _, w := range []string{"rbac-agent", "collect", "budget of 500ms", "-collect-timeout"} {
			if !strings.Contains(a.GetError(), w) {
				t.Errorf("audit %d error %q does not name %q", i, a.GetError(), w)
			}
		}
	}
	if got := len(agent.calls); got != 2 {
		t.Errorf("the agent was called %d times, want once per audit", got)
	}
}
