package rpc_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

type recorder struct {
	mu    sync.Mutex
	calls []rpc.Call
}

func (r *recorder) Observe(_ context.Context, c rpc.Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// TestScopePresentedAndObserved: the server presents its manifest digest on
// the unauthenticated health check, and the observers on both ends see every
// call and denial.
func TestScopePresentedAndObserved(t *testing.T) {
	p := rpctest.NewPKI(t)
	m, err := scope.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	log := rpctest.Logger(t)
	v, err := validation.New(log)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing("test", "")
	if err != nil {
		t.Fatal(err)
	}
	serverSeen := &recorder{}
	srv, err := rpc.NewServer(rpc.ServerConfig{Credentials: p.Credentials(t, identity.RBACAgent), Manifest: m, Logger: log, Tracer: tr.Provider, Validator: v, Observer: serverSeen},
		func(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, panicky{}) })
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() { cancel(); <-done }()

	clientSeen := &recorder{}
	conn, err := rpc.Dial(lis.Addr().String(), identity.ID(identity.RBACAgent), rpc.ClientConfig{Credentials: p.Credentials(t, identity.CLI), Tracer: tr.Provider, Validator: v, Observer: clientSeen})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var md metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	got, ok := rpc.ScopeFromHeader(md)
	want := rpc.PresentedScope{Name: "rbac-agent", Version: "1", Digest: m.Digest()}
	if !ok || got != want {
		t.Errorf("presented scope = %+v, want %+v", got, want)
	}

	// The cli may not call Collect: both ends observe the denial.
	stream, err := secureauditv1.NewRBACServiceClient(conn).Collect(ctx, &secureauditv1.CollectRequest{AuditId: "00000000-0000-4000-8000-000000000000"})
	if err == nil {
		_, err = stream.Recv()
	}
	if err == nil {
		t.Fatal("Collect as cli succeeded")
	}
	denied := rpc.Call{Server: "rbac-agent", Method: "/secureaudit.v1.RBACService/Collect", Caller: identity.ID(identity.CLI).String(), Code: codes.PermissionDenied}
	for name, r := range map[string]*recorder{"server": serverSeen, "client": clientSeen} {
		r.mu.Lock()
		var found bool
		for _, c := range r.calls {
			found = found || c == denied
		}
		if !found {
			t.Errorf("%s observer saw %+v, want %+v among them", name, r.calls, denied)
		}
		r.mu.Unlock()
	}
}
