// Package rpctest starts real platform servers over loopback mTLS for tests:
// a fresh development CA per test, the real interceptor chain and the real
// scope manifest, so that tests exercise exactly what production runs.
package rpctest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

// PKI is a development CA with a certificate for every workload.
type PKI struct {
	Dir string
	// Callers, when set, is the caller policy servers started with Serve
	// give their public API's callers roles with.
	Callers *authz.Callers
}

// NewPKI writes a CA and one certificate per workload, and per extra name
// (a caller with its own SPIFFE ID, such as a backend service with one
// role), into a temporary directory.
func NewPKI(t testing.TB, extra ...string) *PKI {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := pki.WriteAll(dir, append(append([]string{}, identity.Workloads...), extra...), time.Now()); err != nil {
		t.Fatalf("write PKI: %v", err)
	}
	return &PKI{Dir: dir}
}

// Credentials loads a workload's credentials.
func (p *PKI) Credentials(t testing.TB, workload string) *rpc.Credentials {
	t.Helper()
	c, err := rpc.LoadCredentials(pki.Paths(p.Dir, workload))
	if err != nil {
		t.Fatalf("load credentials of %s: %v", workload, err)
	}
	return c
}

// Logger returns a logger that discards, or writes to the test log with -v.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return telemetry.NewLogger(testWriter{t}, "test", slog.LevelDebug)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Serve starts workload's server with the given scope manifest on a free
// loopback port and returns its address; the server stops when the test ends.
func (p *PKI) Serve(t testing.TB, workload string, manifest []byte, register func(*grpc.Server)) string {
	t.Helper()
	m, err := scope.Parse(manifest)
	if err != nil {
		t.Fatalf("parse manifest: %v", err)
	}
	log := Logger(t)
	v, err := validation.New(log)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing(workload, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.NewServer(rpc.ServerConfig{
		Credentials: p.Credentials(t, workload),
		Manifest:    m,
		Callers:     p.Callers,
		Logger:      log,
		Tracer:      tr.Provider,
		Validator:   v,
	}, register)
	if err != nil {
		t.Fatalf("build %s server: %v", workload, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", workload, err)
		}
	})
	return lis.Addr().String()
}

// Dial connects to the server of workload at addr as caller, through the
// platform client (mTLS and client-side validation).
func (p *PKI) Dial(t testing.TB, addr, workload, caller string) *grpc.ClientConn {
	t.Helper()
	v, err := validation.New(Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing(caller, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rpc.Dial(addr, identity.ID(workload), rpc.ClientConfig{Credentials: p.Credentials(t, caller), Tracer: tr.Provider, Validator: v})
	if err != nil {
		t.Fatalf("dial %s: %v", workload, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
