package run

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/validation"
)

// entraManifest is an entra-agent's scope manifest: its identity is the
// workload's default ID, its one caller the orchestrator.
const entraManifest = `apiVersion: secureaudit.dev/v1
kind: AgentScope
metadata: {name: entra-agent, version: 1}
spec:
  domain: test
  identity: spiffe://secureaudit.local/ns/secureaudit/sa/entra-agent
  methods:
    - name: /secureaudit.v1.EntraService/Resolve
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]
  credential: {kind: none}
`

// TestOwnSPIFFEID: an entra-agent whose certificate is for an identity of
// its own (ServiceAccount entra-agent-fabrikam, as one tenant's agent of
// deploy/components/tenant-entra-agent runs) starts only with -spiffe-id
// naming that ID, serves over mTLS under it with the workload's manifest
// (the same digest, which the orchestrator's approval names), and a client
// requiring the default entra-agent ID is refused at the handshake. A
// -spiffe-id of another trust domain, or one the certificate is not for,
// stops the start naming it.
func TestOwnSPIFFEID(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.WriteAll(dir, []string{identity.Orchestrator, "entra-agent-fabrikam"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	own := identity.ID("entra-agent-fabrikam")
	flags := func(id string) Flags {
		p := pki.Paths(dir, "entra-agent-fabrikam")
		return Flags{Listen: "127.0.0.1:0", Cert: p.Cert, Key: p.Key, CA: p.CA, LogLevel: "error", SPIFFEID: id}
	}

	_, err := Setup(identity.EntraAgent, flags(""), []byte(entraManifest), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is for "+own.String()) || !strings.Contains(err.Error(), "-spiffe-id") {
		t.Errorf("without -spiffe-id: %v, want the certificate's ID refused with the flag named", err)
	}
	_, err = Setup(identity.EntraAgent, flags("spiffe://other.example/ns/secureaudit/sa/entra-agent-fabrikam"), []byte(entraManifest), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-spiffe-id") || !strings.Contains(err.Error(), "not in trust domain") {
		t.Errorf("-spiffe-id of another trust domain: %v", err)
	}
	other := identity.ID("entra-agent-contoso").String()
	_, err = Setup(identity.EntraAgent, flags(other), []byte(entraManifest), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Errorf("-spiffe-id the certificate is not for: %v", err)
	}

	svc, err := Setup(identity.EntraAgent, flags(own.String()), []byte(entraManifest), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	builtin, err := scope.Parse([]byte(entraManifest))
	if err != nil {
		t.Fatal(err)
	}
	if svc.Manifest.Digest() != builtin.Digest() {
		t.Errorf("digest %s, want the workload manifest's %s", svc.Manifest.Digest(), builtin.Digest())
	}
	addrFile := filepath.Join(t.TempDir(), "addr")
	svc.addrFile = addrFile
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ctx, func(*grpc.Server) {}) }()
	defer func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	}()
	var addr string
	for addr == "" {
		select {
		case err := <-served:
			t.Fatalf("serve: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if data, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(data))
		}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatal(err)
	}

	orch := pki.Paths(dir, identity.Orchestrator)
	creds, err := rpc.LoadCredentials(orch)
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	v, err := validation.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(server string) (rpc.PresentedScope, error) {
		id, err := identity.Parse(server)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := rpc.Dial(addr, id, rpc.ClientConfig{Credentials: creds, Validator: v})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		var md metadata.MD
		_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		p, _ := rpc.ScopeFromHeader(md)
		return p, err
	}
	p, err := check(own.String())
	if err != nil {
		t.Fatalf("health check requiring %s: %v", own, err)
	}
	if p.Name != identity.EntraAgent || p.Digest != builtin.Digest() {
		t.Errorf("presented %+v, want the entra-agent manifest %s", p, builtin.Digest())
	}
	if _, err := check(identity.ID(identity.EntraAgent).String()); err == nil {
		t.Errorf("a client requiring the default entra-agent ID reached the agent holding %s", own)
	}
}
