package rpc_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

const manifest = `apiVersion: secureaudit.dev/v1
kind: AgentScope
metadata: {name: rbac-agent, version: 1}
spec:
  domain: test
  identity: spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent
  methods:
    - name: /secureaudit.v1.RBACService/Collect
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]
  credential: {kind: none}
`

// panicky is a test server whose Collect panics.
type panicky struct {
	secureauditv1.UnimplementedRBACServiceServer
}

func (panicky) Collect(*secureauditv1.CollectRequest, grpc.ServerStreamingServer[secureauditv1.CollectResponse]) error {
	panic("secret detail that must not reach the caller")
}

func register(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, panicky{}) }

func TestPanicBecomesBareInternal(t *testing.T) {
	p := rpctest.NewPKI(t)
	addr := p.Serve(t, identity.RBACAgent, []byte(manifest), register)
	conn := p.Dial(t, addr, identity.RBACAgent, identity.Orchestrator)
	stream, err := secureauditv1.NewRBACServiceClient(conn).Collect(context.Background(), &secureauditv1.CollectRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"})
	if err == nil {
		_, err = stream.Recv()
	}
	st := status.Convert(err)
	if st.Code() != codes.Internal || st.Message() != "internal" {
		t.Fatalf("got %s %q, want Internal \"internal\"", st.Code(), st.Message())
	}
}

func TestServerRefusesUnreviewedMethods(t *testing.T) {
	p := rpctest.NewPKI(t)
	cases := []struct {
		name, manifest, workload, want string
	}{
		{
			name:     "method without policy",
			manifest: strings.Replace(manifest, "/secureaudit.v1.RBACService/Collect", "/secureaudit.v1.RBACService/Other", 1),
			workload: identity.RBACAgent,
			want:     "no authorization policy for /secureaudit.v1.RBACService/Collect",
		},
		{
			name:     "certificate of another workload",
			manifest: manifest,
			workload: identity.RiskAgent,
			want:     "does not match scope manifest identity",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := scope.Parse([]byte(tc.manifest))
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
			_, err = rpc.NewServer(rpc.ServerConfig{
				Credentials: p.Credentials(t, tc.workload),
				Manifest:    m,
				Logger:      rpctest.Logger(t),
				Tracer:      tr.Provider,
				Validator:   v,
			}, register)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHealthNeedsNoClientCertificate(t *testing.T) {
	p := rpctest.NewPKI(t)
	addr := p.Serve(t, identity.RBACAgent, []byte(manifest), register)
	bundle := p.Credentials(t, identity.CLI)
	cfg := tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(identity.ID(identity.RBACAgent)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status = %s", resp.GetStatus())
	}
	// The same connection without a certificate may not call the service.
	stream, err := secureauditv1.NewRBACServiceClient(conn).Collect(context.Background(), &secureauditv1.CollectRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Collect without certificate: %v, want Unauthenticated", err)
	}
}

// TestRefusalsHeaderOnlyForAuthenticatedCallers: once the server has refused
// a call, a caller with a valid certificate reads the refusals header; a
// caller without one does not.
func TestRefusalsHeaderOnlyForAuthenticatedCallers(t *testing.T) {
	p := rpctest.NewPKI(t)
	addr := p.Serve(t, identity.RBACAgent, []byte(manifest), register)
	stream, err := secureauditv1.NewRBACServiceClient(p.Dial(t, addr, identity.RBACAgent, identity.CLI)).Collect(context.Background(), &secureauditv1.CollectRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Collect as cli: %v, want PermissionDenied", err)
	}
	header := func(conn *grpc.ClientConn) string {
		var md metadata.MD
		if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
			t.Fatal(err)
		}
		got, _ := rpc.ScopeFromHeader(md)
		return got.Refusals
	}
	if got := header(p.Dial(t, addr, identity.RBACAgent, identity.Orchestrator)); !strings.Contains(got, `"count":1`) {
		t.Errorf("refusals header to the orchestrator = %q, want the one refusal", got)
	}
	cfg := tlsconfig.TLSClientConfig(p.Credentials(t, identity.CLI), tlsconfig.AuthorizeID(identity.ID(identity.RBACAgent)))
	anon, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if got := header(anon); got != "" {
		t.Errorf("refusals header to a caller without a certificate = %q, want none", got)
	}
}
