package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Health service names the probes ask for. The empty name is readiness too,
// as a client that names no service asks about the server as a whole.
const (
	HealthLiveness  = "liveness"
	HealthReadiness = "readiness"
)

// ReadinessCheck says whether the service can do its job; an error says why not.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Probes is the gRPC health v1 service the kubelet's probes ask, on its own
// plaintext port (the kubelet's gRPC probe speaks no TLS and presents no
// certificate): liveness is SERVING while the process answers; readiness is
// SERVING when every readiness check passes (certificate valid, store open,
// source loaded), checked at each request. A readiness check failing or
// passing again is logged with its reason.
type Probes struct {
	healthpb.UnimplementedHealthServer
	checks []ReadinessCheck
	log    *slog.Logger

	mu   sync.Mutex
	last map[string]string // check name -> last failure logged
}

// NewProbes returns the health service over the given checks.
func NewProbes(log *slog.Logger, checks ...ReadinessCheck) *Probes {
	return &Probes{checks: checks, log: log, last: map[string]string{}}
}

// Ready runs the readiness checks and returns the first failure.
func (p *Probes) Ready(ctx context.Context) error {
	var first error
	for _, c := range p.checks {
		err := c.Check(ctx)
		msg := ""
		if err != nil {
			msg = err.Error()
			if first == nil {
				first = fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		p.mu.Lock()
		if p.last[c.Name] != msg {
			if msg != "" {
				p.log.Warn("not ready", "check", c.Name, "reason", msg)
			} else {
				p.log.Info("ready again", "check", c.Name)
			}
			p.last[c.Name] = msg
		}
		p.mu.Unlock()
	}
	return first
}

func (p *Probes) status(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	switch service {
	case HealthLiveness:
		return healthpb.HealthCheckResponse_SERVING, nil
	case "", HealthReadiness:
		if p.Ready(ctx) != nil {
			return healthpb.HealthCheckResponse_NOT_SERVING, nil
		}
		return healthpb.HealthCheckResponse_SERVING, nil
	}
	return healthpb.HealthCheckResponse_SERVICE_UNKNOWN, status.Errorf(codes.NotFound, "unknown service %q: ask %q or %q", service, HealthLiveness, HealthReadiness)
}

// Check answers one probe.
func (p *Probes) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, err := p.status(ctx, req.GetService())
	if err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers the status of both services.
func (p *Probes) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	for _, s := range []string{HealthLiveness, HealthReadiness} {
		st, _ := p.status(ctx, s)
		out.Statuses[s] = &healthpb.HealthCheckResponse{Status: st}
	}
	return out, nil
}

// Watch sends the status at once and again whenever it changes, looking
// every second.
func (p *Probes) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx := stream.Context()
	last := healthpb.HealthCheckResponse_UNKNOWN
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st, err := p.status(ctx, req.GetService())
		if err != nil {
			return err
		}
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// probeTimeout bounds one probe's checks.
const probeTimeout = 5 * time.Second

// MetricsPath is where the health port serves the Prometheus metrics.
const MetricsPath = "/metrics"

// ServeProbes serves, in plaintext on lis until ctx ends, only the gRPC
// health service (over HTTP/2 without TLS, as the kubelet's gRPC probe
// speaks it) and, when metrics is not nil, GET MetricsPath for a Prometheus
// scrape (HTTP/1.1 or HTTP/2). Every other request is answered 404 (or
// gRPC Unimplemented), so the port gives no access to the service's API.
func ServeProbes(ctx context.Context, lis net.Listener, p *Probes, metrics http.Handler) error {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(4<<10),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, p)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Handler:           probeHandler(srv, metrics),
		Protocols:         &protocols,
		ReadHeaderTimeout: probeTimeout,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve probes on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	// Watch streams stay open: close rather than wait for them.
	hs.Close()
	srv.Stop()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve probes on %s: %w", lis.Addr(), err)
	}
	return nil
}

// probeHandler routes gRPC (HTTP/2 with a gRPC content type) to the health
// server and GET MetricsPath to metrics; it answers 404 to anything else.
func probeHandler(health *grpc.Server, metrics http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc"):
			health.ServeHTTP(w, r)
		case r.URL.Path == MetricsPath && metrics != nil:
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			metrics.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
