package rpc_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
)

// TestProbes asks the plaintext probe server as the kubelet does: liveness
// is SERVING while the process answers; readiness (and the unnamed service)
// follows the checks, the certificate's validity among them.
func TestProbes(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA(now.Add(-2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	creds := func(t *testing.T, notBefore, notAfter time.Time) *rpc.Credentials {
		dir := t.TempDir()
		files := pki.Paths(dir, identity.RiskAgent)
		writeAtomic(t, files.CA, ca.CertPEM())
		c, k, err := ca.IssueValid(identity.RiskAgent, notBefore, notAfter)
		if err != nil {
			t.Fatal(err)
		}
		writeAtomic(t, files.Cert, c)
		writeAtomic(t, files.Key, k)
		cr, err := rpc.LoadCredentials(files)
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	storeDown := func(context.Context) error { return errors.New("store closed") }
	ok := func(context.Context) error { return nil }
	const serving, notServing = healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	cases := []struct {
		name               string
		notBefore, expires time.Time
		check              func(context.Context) error
		readiness          healthpb.HealthCheckResponse_ServingStatus
	}{
		{"ready", now.Add(-time.Minute), now.Add(time.Hour), ok, serving},
		{"certificate expired", now.Add(-time.Hour), now.Add(-time.Minute), ok, notServing},
		{"certificate not yet valid", now.Add(time.Hour), now.Add(2 * time.Hour), ok, notServing},
		{"store closed", now.Add(-time.Minute), now.Add(time.Hour), storeDown, notServing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := creds(t, tc.notBefore, tc.expires)
			probes := rpc.NewProbes(rpctest.Logger(t),
				rpc.ReadinessCheck{Name: "certificate", Check: func(context.Context) error { return cr.Check(time.Now()) }},
				rpc.ReadinessCheck{Name: "store", Check: tc.check})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rpc.ServeProbes(ctx, lis, probes) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			h := healthpb.NewHealthClient(conn)
			for service, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
				rpc.HealthLiveness:  serving,
				rpc.HealthReadiness: tc.readiness,
				"":                  tc.readiness,
			} {
				resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
				if err != nil {
					t.Fatalf("Check(%q): %v", service, err)
				}
				if resp.GetStatus() != want {
					t.Errorf("Check(%q) = %s, want %s", service, resp.GetStatus(), want)
				}
			}
			_, err = h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "secureaudit.v1.RiskService"})
			if status.Code(err) != codes.NotFound {
				t.Errorf("Check of an unknown service: %v, want NotFound", err)
			}
		})
	}
}
