package rpc_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

const orchestratorManifest = `apiVersion: secureaudit.dev/v1
kind: AgentScope
metadata: {name: orchestrator, version: 1}
spec:
  domain: test
  identity: spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator
  methods:
    - name: /secureaudit.v1.AuditService/ListAudits
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/WatchAudit
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/CancelAudit
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/CreateSchedule
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/DeleteSchedule
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/GetAudit
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/GetAuditHistory
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/GetReport
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/ListSchedules
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
    - name: /secureaudit.v1.AuditService/StartAudit
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/cli]
  credential: {kind: none}
`

// serials records the certificate serial numbers seen, in order of first sight.
type serials struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *serials) add(cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[cert.SerialNumber.Text(16)] = true
}

func (s *serials) has(serial string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[serial]
}

func (s *serials) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// auditServer answers ListAudits, recording the client certificate of each
// call, and holds WatchAudit open until release is closed.
type auditServer struct {
	secureauditv1.UnimplementedAuditServiceServer
	clients *serials
	release chan struct{}
}

func (a *auditServer) ListAudits(ctx context.Context, _ *secureauditv1.ListAuditsRequest) (*secureauditv1.ListAuditsResponse, error) {
	p, _ := peer.FromContext(ctx)
	a.clients.add(p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0])
	return &secureauditv1.ListAuditsResponse{}, nil
}

func (a *auditServer) WatchAudit(_ *secureauditv1.WatchAuditRequest, stream grpc.ServerStreamingServer[secureauditv1.WatchAuditResponse]) error {
	select {
	case <-a.release:
		return nil
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}

// writeAtomic replaces path as the kubelet's atomic writer and spiffe-helper
// do: a new file renamed over the old one.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// issue writes a certificate and key for workload valid for life from now,
// the certificate first (so that for a moment it does not match the key, as
// when two files are rewritten one after the other), and returns its serial.
func issue(t *testing.T, ca *pki.CA, dir, workload string, life time.Duration) (serial string, notAfter time.Time) {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueValid(workload, now.Add(-time.Second), now.Add(life))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	files := pki.Paths(dir, workload)
	writeAtomic(t, files.Cert, certPEM)
	writeAtomic(t, files.Key, keyPEM)
	return cert.SerialNumber.Text(16), cert.NotAfter
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRotationWhileRPCsRun rotates short-lived certificates of both ends
// under a real server and client over loopback mTLS while calls run: no call
// fails, each rotated certificate is presented on new connections by both
// ends, a call in flight across every rotation completes, and calls go on
// after the first certificates have expired.
func TestRotationWhileRPCsRun(t *testing.T) {
	const (
		life     = 20 * time.Second
		every    = 5 * time.Second
		duration = 30 * time.Second
	)
	dir := t.TempDir()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, filepath.Join(dir, "ca.crt"), ca.CertPEM())
	serverSerial, firstExpiry := issue(t, ca, dir, identity.Orchestrator, life)
	clientSerial, _ := issue(t, ca, dir, identity.CLI, life)

	load := func(workload string) *rpc.Credentials {
		c, err := rpc.LoadCredentials(pki.Paths(dir, workload))
		if err != nil {
			t.Fatal(err)
		}
		c.SetReloadInterval(100 * time.Millisecond)
		c.SetLogger(rpctest.Logger(t))
		return c
	}
	serverCreds, clientCreds := load(identity.Orchestrator), load(identity.CLI)

	m, err := scope.Parse([]byte(orchestratorManifest))
	if err != nil {
		t.Fatal(err)
	}
	v, err := validation.New(rpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing("test", "")
	if err != nil {
		t.Fatal(err)
	}
	impl := &auditServer{clients: &serials{}, release: make(chan struct{})}
	srv, err := rpc.NewServer(rpc.ServerConfig{
		Credentials:      serverCreds,
		Manifest:         m,
		Logger:           rpctest.Logger(t),
		Tracer:           tr.Provider,
		Validator:        v,
		MaxConnectionAge: time.Second,
	}, func(s *grpc.Server) { secureauditv1.RegisterAuditServiceServer(s, impl) })
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	conn, err := rpc.Dial(lis.Addr().String(), identity.ID(identity.Orchestrator), rpc.ClientConfig{Credentials: clientCreds, Tracer: tr.Provider, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := secureauditv1.NewAuditServiceClient(conn)

	// One call held open across every rotation.
	watch, err := client.WatchAudit(context.Background(), &secureauditv1.WatchAuditRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"})
	if err != nil {
		t.Fatal(err)
	}
	watchDone := make(chan error, 1)
	go func() {
		_, err := watch.Recv()
		watchDone <- err
	}()

	servers := &serials{}
	var calls, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(10 * time.Millisecond)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				var p peer.Peer
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := client.ListAudits(cctx, &secureauditv1.ListAuditsRequest{}, grpc.Peer(&p))
				ccancel()
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				servers.add(p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0])
			}
		}()
	}

	start := time.Now()
	waitFor(t, 10*time.Second, "no call succeeded with the first certificates", func() bool {
		return servers.has(serverSerial) && impl.clients.has(clientSerial)
	})
	rotations := 0
	rotate := time.NewTicker(every)
	for time.Since(start) < duration-every/2 {
		<-rotate.C
		serverSerial, _ = issue(t, ca, dir, identity.Orchestrator, life)
		clientSerial, _ = issue(t, ca, dir, identity.CLI, life)
		rotations++
		waitFor(t, 5*time.Second, "the rotated certificates were not presented on a new connection", func() bool {
			return servers.has(serverSerial) && impl.clients.has(clientSerial)
		})
	}
	rotate.Stop()
	waitFor(t, 2*every, "calls did not go on past the first certificates' expiry", func() bool {
		return time.Now().After(firstExpiry.Add(time.Second))
	})
	n := calls.Load()
	waitFor(t, 5*time.Second, "no call after the first certificates expired", func() bool { return calls.Load() > n+10 })
	close(stop)
	wg.Wait()

	close(impl.release)
	if err := <-watchDone; !errors.Is(err, io.EOF) {
		t.Errorf("call in flight across the rotations ended with %v, want a normal end", err)
	}
	if f := failures.Load(); f != 0 {
		t.Errorf("%d of %d calls failed; first: %v", f, calls.Load(), firstFailure.Load())
	}
	if got, want := servers.count(), rotations+1; got != want {
		t.Errorf("client saw %d server certificates, want %d", got, want)
	}
	if got, want := impl.clients.count(), rotations+1; got != want {
		t.Errorf("server saw %d client certificates, want %d", got, want)
	}
	if rotations < 5 {
		t.Errorf("%d rotations, want at least 5", rotations)
	}
	t.Logf("%d calls, %d rotations, none failed", calls.Load(), rotations)
}

// TestCredentialsCheck: an expired or not-yet-valid certificate, and a
// rewrite that cannot be used, are reported by file, identity and time, and
// the material in use stays the last usable one.
func TestCredentialsCheck(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name       string
		notBefore  time.Time
		notAfter   time.Time
		rewriteFor string // a workload whose certificate replaces the file after loading
		want       []string
	}{
		{name: "valid", notBefore: now.Add(-time.Minute), notAfter: now.Add(time.Hour)},
		{name: "expired", notBefore: now.Add(-time.Hour), notAfter: now.Add(-time.Minute),
			want: []string{"orchestrator.crt", "spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator", "expired at " + now.Add(-time.Minute).UTC().Format(time.RFC3339)}},
		{name: "not yet valid", notBefore: now.Add(time.Hour), notAfter: now.Add(2 * time.Hour),
			want: []string{"orchestrator.crt", "not valid before " + now.Add(time.Hour).UTC().Format(time.RFC3339)}},
		{name: "rotated to another identity", notBefore: now.Add(-time.Minute), notAfter: now.Add(time.Hour), rewriteFor: identity.RiskAgent,
			want: []string{"orchestrator.crt is now for spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ca, err := pki.NewCA(now.Add(-2 * time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			files := pki.Paths(dir, identity.Orchestrator)
			writeAtomic(t, files.CA, ca.CertPEM())
			certPEM, keyPEM, err := ca.IssueValid(identity.Orchestrator, tc.notBefore, tc.notAfter)
			if err != nil {
				t.Fatal(err)
			}
			writeAtomic(t, files.Cert, certPEM)
			writeAtomic(t, files.Key, keyPEM)
			creds, err := rpc.LoadCredentials(files)
			if err != nil {
				t.Fatal(err)
			}
			before := creds.SVID()
			if tc.rewriteFor != "" {
				c, k, err := ca.IssueValid(tc.rewriteFor, tc.notBefore, tc.notAfter)
				if err != nil {
					t.Fatal(err)
				}
				writeAtomic(t, files.Cert, c)
				writeAtomic(t, files.Key, k)
			}
			err = creds.Check(now)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check passed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check: %v\nwant it to contain %q", err, w)
				}
			}
			if creds.SVID() != before {
				t.Error("the material in use changed to an unusable rewrite")
			}
		})
	}
}
