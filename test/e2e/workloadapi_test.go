package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
)

// spireAgent is a SPIFFE Workload API in the test, as a SPIRE agent serves
// it on a unix socket: FetchX509SVID streams the current SVID and bundle,
// and again at each rotation.
type spireAgent struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	mu      sync.Mutex
	current *workload.X509SVIDResponse
	changed chan struct{}
}

func (a *spireAgent) rotate(resp *workload.X509SVIDResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.current = resp
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *spireAgent) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	for {
		a.mu.Lock()
		resp, changed := a.current, a.changed
		a.mu.Unlock()
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

func issueSVID(t *testing.T, ca *pki.CA, name string, lifetime time.Duration) (*workload.X509SVIDResponse, *big.Int) {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueValid(name, now.Add(-time.Second), now.Add(lifetime))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	caBlock, _ := pem.Decode(ca.CertPEM())
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: identity.ID(name).String(), X509Svid: cb.Bytes, X509SvidKey: kb.Bytes, Bundle: caBlock.Bytes,
	}}}, cert.SerialNumber
}

// TestServiceTakesItsSVIDFromTheWorkloadAPI runs the report-agent binary
// with SPIFFE_ENDPOINT_SOCKET naming a Workload API served by the test on a
// unix socket (no certificate files): it serves mTLS with the SVID the API
// gives, and after the API rotates it to a two-minute certificate, the next
// handshake presents the new one, with no restart.
func TestServiceTakesItsSVIDFromTheWorkloadAPI(t *testing.T) {
	ca, err := pki.NewCA(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	first, firstSerial := issueSVID(t, ca, identity.ReportAgent, time.Hour)
	agent := &spireAgent{current: first, changed: make(chan struct{})}
	dir, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, agent)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "unix://"+sock)
	// startBinary also passes the shared -cert-dir: the socket wins.
	addr, _ := startBinary(t, identity.ReportAgent)

	bundle := x509bundle.FromX509Authorities(identity.Domain(), nil)
	caCert, _ := pem.Decode(ca.CertPEM())
	root, err := x509.ParseCertificate(caCert.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	bundle.AddX509Authority(root)
	presented := func() (*big.Int, error) {
		conn, err := tls.Dial("tcp", addr, tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(identity.ID(identity.ReportAgent))))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
	}
	got, err := presented()
	if err != nil || got.Cmp(firstSerial) != 0 {
		t.Fatalf("the report-agent presents %x (%v), want the Workload API's SVID %x", got, err, firstSerial)
	}

	rotated, rotatedSerial := issueSVID(t, ca, identity.ReportAgent, 2*time.Minute)
	agent.rotate(rotated)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := presented()
		if err == nil && got.Cmp(rotatedSerial) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the rotation the report-agent presents %x (%v), want %x", got, err, rotatedSerial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
