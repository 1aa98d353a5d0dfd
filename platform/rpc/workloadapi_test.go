package rpc_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
)

// workloadAPI is a SPIFFE Workload API server in the test, as a SPIRE
// agent serves it on a unix socket: FetchX509SVID streams the current SVID
// and trust bundle, and again at each rotation.
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	mu      sync.Mutex
	current *workload.X509SVIDResponse
	changed chan struct{} // closed and replaced at each rotation
}

func (w *workloadAPI) rotate(resp *workload.X509SVIDResponse) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current = resp
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	for {
		w.mu.Lock()
		resp, changed := w.current, w.changed
		w.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		}
	}
}

// svidResponse issues a certificate for workload valid for lifetime and
// returns it as the Workload API sends it (DER, the key as PKCS#8) with its
// serial number.
func svidResponse(t *testing.T, ca *pki.CA, workloadName string, lifetime time.Duration) (*workload.X509SVIDResponse, *big.Int) {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueValid(workloadName, now.Add(-time.Second), now.Add(lifetime))
	if err != nil {
		t.Fatal(err)
	}
	der := func(data []byte) []byte {
		b, _ := pem.Decode(data)
		if b == nil {
			t.Fatal("no PEM block")
		}
		return b.Bytes
	}
	cert, err := x509.ParseCertificate(der(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	return &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId:    identity.ID(workloadName).String(),
		X509Svid:    cert.Raw,
		X509SvidKey: der(keyPEM),
		Bundle:      der(ca.CertPEM()),
	}}}, cert.SerialNumber
}

// TestWorkloadAPICredentials takes a workload's SVID from a Workload API
// served on a unix socket, rotates it to a two-minute certificate, and
// requires the new certificate in use (by the credentials and by the next
// TLS handshake) without a restart; a rotation to another identity is
// refused, keeping the previous SVID, and reported by Check.
func TestWorkloadAPICredentials(t *testing.T) {
	ca, err := pki.NewCA(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	first, firstSerial := svidResponse(t, ca, identity.RiskAgent, time.Hour)
	api := &workloadAPI{current: first, changed: make(chan struct{})}
	// A short directory: a unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "wlapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, api)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := rpc.WorkloadAPICredentials(ctx, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := creds.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	creds.SetLogger(rpctest.Logger(t))
	if got, want := creds.ID(), identity.ID(identity.RiskAgent); got != want {
		t.Fatalf("ID() = %s, want %s", got, want)
	}

	// A TLS server presenting the current SVID, as rpc.NewServer's does.
	tlis, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.TLSServerConfig(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer tlis.Close()
	go func() {
		for {
			c, err := tlis.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	presented := func() *big.Int {
		t.Helper()
		conn, err := tls.Dial("tcp", tlis.Addr().String(), tlsconfig.TLSClientConfig(creds, tlsconfig.AuthorizeID(identity.ID(identity.RiskAgent))))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	if got := presented(); got.Cmp(firstSerial) != 0 {
		t.Fatalf("presented serial %x, want the first SVID's %x", got, firstSerial)
	}

	rotated, rotatedSerial := svidResponse(t, ca, identity.RiskAgent, 2*time.Minute)
	api.rotate(rotated)
	deadline := time.Now().Add(5 * time.Second)
	for creds.SVID().Certificates[0].SerialNumber.Cmp(rotatedSerial) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the rotated SVID %x is not in use 5s after the Workload API sent it", rotatedSerial)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := presented(); got.Cmp(rotatedSerial) != 0 {
		t.Errorf("after the rotation the server presents %x, want %x", got, rotatedSerial)
	}
	if err := creds.Check(time.Now()); err != nil {
		t.Errorf("Check after the rotation: %v", err)
	}
	if err := creds.Check(time.Now().Add(3 * time.Minute)); err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "Workload API") {
		t.Errorf("Check past the two-minute certificate: %v, want expired from the Workload API", err)
	}

	foreign, _ := svidResponse(t, ca, identity.ReportAgent, time.Hour)
	api.rotate(foreign)
	deadline = time.Now().Add(5 * time.Second)
	for {
		err := creds.Check(time.Now())
		if err != nil && strings.Contains(err.Error(), identity.ID(identity.ReportAgent).String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a rotation to %s is not reported by Check: %v", identity.ID(identity.ReportAgent), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := creds.SVID().Certificates[0].SerialNumber; got.Cmp(rotatedSerial) != 0 {
		t.Errorf("after a refused rotation the SVID is %x, want the previous %x", got, rotatedSerial)
	}
}
