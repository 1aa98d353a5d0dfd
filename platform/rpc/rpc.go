// Package rpc is the one way SecureAudit builds gRPC servers and clients:
// mTLS with X.509-SVIDs, the caller authenticated and authorized per method
// from the scope manifest, protovalidate on both ends, tracing propagated on
// every hop, logging, and panic recovery, in one interceptor chain.
package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

// MaxMessageSize bounds every message. Large data travels as bounded chunks.
const MaxMessageSize = 16 << 20

// DefaultStopTimeout is how long a server waits for RPCs to finish on stop.
const DefaultStopTimeout = 10 * time.Second

// ServerConfig is what every server needs.
type ServerConfig struct {
	Credentials *Credentials
	Manifest    *scope.Manifest
	// Callers, on a server whose methods name roles (the orchestrator's
	// public API), gives callers their roles; nil gives none.
	Callers *authz.Callers
	Logger  *slog.Logger
	Tracer  trace.TracerProvider
	// Meter, when set, records the RPC metrics of OpenTelemetry's semantic
	// conventions (rpc.server.call.duration and the like).
	Meter     metric.MeterProvider
	Validator *validation.Validator
	// Observer, when set, is told of every authorization decision.
	Observer Observer
	// CredentialCheck, when set, returns the latest credential self-check,
	// presented on every response (HeaderCredentialCheck).
	CredentialCheck func() string
	// StopTimeout bounds graceful stop; DefaultStopTimeout when zero.
	StopTimeout time.Duration
	// MaxConnectionAge is how long a client connection is served before the
	// server asks the client to reconnect (GOAWAY; RPCs in flight finish, new
	// ones go to a new connection). Callers are authenticated on every call
	// against their certificate's validity, so this must be shorter than the
	// time between a certificate's renewal and its expiry.
	// DefaultMaxConnectionAge when zero.
	MaxConnectionAge time.Duration
}

// DefaultMaxConnectionAge suits csi-driver-spiffe's default (one-hour
// certificates renewed with a third of their lifetime left).
const DefaultMaxConnectionAge = 5 * time.Minute

// Keepalive: a peer that stops answering (a stopped process, a lost node)
// is noticed within KeepaliveTime+KeepaliveTimeout and its calls fail
// Unavailable instead of hanging.
const (
	KeepaliveTime    = 20 * time.Second
	KeepaliveTimeout = 10 * time.Second
)

// Server is a gRPC server with the platform's chain and the health service.
type Server struct {
	grpc        *grpc.Server
	health      *health.Server
	log         *slog.Logger
	stopTimeout time.Duration
}

// NewServer builds a server, lets register add the service implementations,
// and refuses to start if any registered method has no authorization policy,
// or if the manifest is not this workload's.
func NewServer(cfg ServerConfig, register func(*grpc.Server)) (*Server, error) {
	if cfg.Credentials.ID().String() != cfg.Manifest.Spec.Identity {
		return nil, fmt.Errorf("certificate identity %s does not match scope manifest identity %s", cfg.Credentials.ID(), cfg.Manifest.Spec.Identity)
	}
	policy, err := authz.NewPolicy(cfg.Manifest, cfg.Callers)
	if err != nil {
		return nil, fmt.Errorf("build authorization policy: %w", err)
	}
	guard := authz.NewGuard(policy, cfg.Credentials, cfg.Logger)
	if cfg.Observer != nil {
		server, o := cfg.Manifest.Metadata.Name, cfg.Observer
		guard.Observe(func(ctx context.Context, method, caller string, code codes.Code) {
			o.Observe(ctx, Call{Server: server, Method: method, Caller: caller, Code: code})
		})
	}

	present := scopeHeader(cfg.Manifest)

	// The certificate is the one current at each handshake, so a rotated
	// SVID is presented on the next connection.
	tlsCfg := tlsconfig.TLSServerConfig(cfg.Credentials)
	// The client certificate is verified by the guard against the trust
	// bundle, so that a missing or foreign certificate is answered with
	// Unauthenticated rather than a failed handshake. The handshake still
	// proves the client holds the certificate's key.
	tlsCfg.ClientAuth = tls.RequestClientCert
	tlsCfg.MinVersion = tls.VersionTLS13

	maxAge := cfg.MaxConnectionAge
	if maxAge == 0 {
		maxAge = DefaultMaxConnectionAge
	}
	recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		cfg.Logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal")
	})
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelOptions(cfg.Tracer, cfg.Meter)...)),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: maxAge, Time: KeepaliveTime, Timeout: KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveTime / 2, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(
			presentUnary(present, cfg.CredentialCheck, guard),
			guard.Unary(),
			telemetry.UnaryLogging(cfg.Logger),
			cfg.Validator.UnaryServer(),
			recovery.UnaryServerInterceptor(recover),
		),
		grpc.ChainStreamInterceptor(
			presentStream(present, cfg.CredentialCheck, guard),
			guard.Stream(),
			telemetry.StreamLogging(cfg.Logger),
			cfg.Validator.StreamServer(),
			recovery.StreamServerInterceptor(recover),
		),
	)
	register(srv)
	if err := policy.Covers(srv.GetServiceInfo()); err != nil {
		return nil, err
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	stop := cfg.StopTimeout
	if stop == 0 {
		stop = DefaultStopTimeout
	}
	return &Server{grpc: srv, health: hs, log: cfg.Logger, stopTimeout: stop}, nil
}

// GRPC returns the underlying server.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Serve serves on lis until ctx ends, then stops gracefully, forcing the stop
// after the stop timeout.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	s.health.Resume()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.stopTimeout):
		s.log.Warn("graceful stop timed out; closing open RPCs")
		s.grpc.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve %s: %w", lis.Addr(), err)
	}
	return nil
}

// ClientConfig is what every client needs.
type ClientConfig struct {
	Credentials *Credentials
	Tracer      trace.TracerProvider
	// Meter, when set, records the client's RPC metrics.
	Meter     metric.MeterProvider
	Validator *validation.Validator
	// Observer, when set, is told of every call the client makes.
	Observer Observer
}

// Unary calls that failed with Unavailable (the server restarting, a
// connection lost) are tried again with exponential backoff, within the
// call's deadline, except those whose repetition would do something twice.
const (
	RetryAttempts = 5
	RetryBackoff  = 100 * time.Millisecond
	RetryMaxWait  = 5 * time.Second
)

// notRetried are the unary methods that change state and whose request may
// have been carried out before the connection failed.
var notRetried = map[string]bool{
	"/secureaudit.v1.AuditService/StartAudit":             true,
	"/secureaudit.v1.AuditService/CreateSchedule":         true,
	"/secureaudit.v1.ScopeService/ApproveScope":           true,
	"/secureaudit.v1.AcceptanceService/RequestAcceptance": true,
	"/secureaudit.v1.AcceptanceService/ApproveAcceptance": true,
	"/secureaudit.v1.ReviewService/DecideReview":          true,
	"/secureaudit.v1.ReviewService/ImportReview":          true,
	"/secureaudit.v1.RegressionService/RunRegression":     true,
}

func retryUnavailable() grpc.UnaryClientInterceptor {
	retrying := retry.UnaryClientInterceptor(
		retry.WithCodes(codes.Unavailable),
		retry.WithMax(RetryAttempts),
		retry.WithBackoff(retry.BackoffExponentialWithJitterBounded(RetryBackoff, 0.2, RetryMaxWait)),
	)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if notRetried[method] {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		return retrying(ctx, method, req, reply, cc, invoker, opts...)
	}
}

// otelOptions instruments calls with the tracer and, when set, the meter.
func otelOptions(tp trace.TracerProvider, mp metric.MeterProvider) []otelgrpc.Option {
	opts := []otelgrpc.Option{otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(telemetry.Propagator())}
	if mp != nil {
		opts = append(opts, otelgrpc.WithMeterProvider(mp))
	}
	return opts
}

// ReconnectMaxDelay bounds the wait between attempts to reconnect to a peer.
const ReconnectMaxDelay = 5 * time.Second

var reconnectBackoff = backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: ReconnectMaxDelay}

// Dial connects to target, which must present the SVID of server.
func Dial(target string, server spiffeid.ID, cfg ClientConfig) (*grpc.ClientConn, error) {
	// Certificate and trust bundle are the ones current at each handshake.
	tlsCfg := tlsconfig.MTLSClientConfig(cfg.Credentials, cfg.Credentials, tlsconfig.AuthorizeID(server))
	tlsCfg.MinVersion = tls.VersionTLS13
	unary := []grpc.UnaryClientInterceptor{retryUnavailable(), cfg.Validator.UnaryClient()}
	streams := []grpc.StreamClientInterceptor{cfg.Validator.StreamClient()}
	if cfg.Observer != nil {
		name := server.Path()[strings.LastIndexByte(server.Path(), '/')+1:]
		unary = append([]grpc.UnaryClientInterceptor{observeUnaryClient(cfg.Observer, name, cfg.Credentials.ID().String())}, unary...)
		streams = append([]grpc.StreamClientInterceptor{observeStreamClient(cfg.Observer, name, cfg.Credentials.ID().String())}, streams...)
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOptions(cfg.Tracer, cfg.Meter)...)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		// A peer restarted (a pod rescheduled, a process under `secureaudit
		// up`) is reached again within ReconnectMaxDelay, not gRPC's 120s.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: 20 * time.Second}),
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithChainStreamInterceptor(streams...),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", server, target, err)
	}
	return conn, nil
}
