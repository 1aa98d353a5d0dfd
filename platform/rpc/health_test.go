package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/telemetry"
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
			go func() { done <- rpc.ServeProbes(ctx, lis, probes, nil) }()
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

// TestProbePortMetrics serves the probes with the metrics of a service and
// asks the port as the kubelet and Prometheus would: the gRPC health check
// answers, GET /metrics is a Prometheus scrape holding the service's own
// instruments and the runtime's, and nothing else is served: any other path
// or method is refused, and so is any other gRPC service.
func TestProbePortMetrics(t *testing.T) {
	m, err := telemetry.NewMetrics(identity.Orchestrator, "")
	if err != nil {
		t.Fatal(err)
	}
	counter, err := m.Provider.Meter("test").Int64Counter("secureaudit.test.audits")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)
	probes := rpc.NewProbes(rpctest.Logger(t))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rpc.ServeProbes(ctx, lis, probes, m.Handler()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + lis.Addr().String()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: rpc.HealthReadiness})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("readiness: %v %v, want SERVING", resp.GetStatus(), err)
	}
	err = conn.Invoke(ctx, "/secureaudit.v1.AuditService/ListAudits", &secureauditv1.ListAuditsRequest{}, &secureauditv1.ListAuditsResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ListAudits on the probe port: %v, want Unimplemented", err)
	}

	// Prometheus scrapes over HTTP/1.1 (and the port speaks HTTP/2 too).
	for name, client := range map[string]*http.Client{"HTTP/1.1": http.DefaultClient, "HTTP/2": h2cClient()} {
		res, err := client.Get(base + rpc.MetricsPath)
		if err != nil {
			t.Fatalf("%s GET /metrics: %v", name, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s GET /metrics: %s %v", name, res.Status, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: /metrics is not the Prometheus text format: %v\n%s", name, err, body)
		}
		got := families["secureaudit_test_audits_total"]
		if got == nil || len(got.GetMetric()) != 1 || got.GetMetric()[0].GetCounter().GetValue() != 3 {
			t.Errorf("%s: secureaudit_test_audits_total = %v, want one counter at 3", name, got)
		}
		for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "target_info"} {
			if families[want] == nil {
				t.Errorf("%s: /metrics has no %s", name, want)
			}
		}
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"}, {http.MethodGet, "/metrics/"}, {http.MethodGet, "/debug/pprof/"},
		{http.MethodGet, "/healthz"}, {http.MethodGet, "/secureaudit.v1.AuditService/ListAudits"},
		{http.MethodPost, "/grpc.health.v1.Health/Check"}, {http.MethodPost, rpc.MetricsPath}, {http.MethodDelete, rpc.MetricsPath},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %s, want 404 or 405", tc.method, tc.path, res.Status)
		}
	}
}

// h2cClient speaks HTTP/2 without TLS (prior knowledge), as the kubelet's
// gRPC probe does.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}
