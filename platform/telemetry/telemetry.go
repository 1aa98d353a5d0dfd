// Package telemetry sets up tracing and structured logging for a service:
// an OpenTelemetry tracer provider whose context is propagated across every
// gRPC hop, and a slog logger that stamps each record with the trace and span
// IDs of its context.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"secureaudit.dev/platform/identity"
)

// Log attribute keys shared by every service.
const (
	KeyService  = "service"
	KeyTraceID  = "trace_id"
	KeySpanID   = "span_id"
	KeyMethod   = "method"
	KeyCaller   = "caller"
	KeyCode     = "code"
	KeyDuration = "duration"
	KeyError    = "error"
	KeyAuditID  = "audit_id"
)

// Propagator is the W3C trace-context propagator used on every hop.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Tracing is a service's tracer provider and the file its spans go to, if any.
type Tracing struct {
	Provider *sdktrace.TracerProvider
	file     *os.File
}

// NewTracing builds a tracer provider for the service. Spans are exported
// over OTLP when the OTEL_* environment asks for it (see otlpEnabled), and
// when traceFile is not empty, finished spans are appended to it as JSON
// lines.
func NewTracing(service, traceFile string) (*Tracing, error) {
	res := resource.NewSchemaless(semconv.ServiceName(service))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample())}
	t := &Tracing{}
	exp, err := spanExporter(context.Background(), osLookup)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if traceFile != "" {
		f, err := os.OpenFile(traceFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open trace file: %w", err)
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("create trace exporter: %w", err)
		}
		t.file = f
		opts = append(opts, sdktrace.WithSyncer(exp))
	}
	t.Provider = sdktrace.NewTracerProvider(opts...)
	return t, nil
}

// osLookup is os.LookupEnv: the OTLP exporters read the same environment.
var osLookup = os.LookupEnv

// Shutdown flushes and closes the tracer provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	err := t.Provider.Shutdown(ctx)
	if t.file != nil {
		if cerr := t.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// NewLogger returns a JSON logger for the service that adds trace_id and
// span_id to every record logged with a traced context.
func NewLogger(w io.Writer, service string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(traceHandler{h}).With(KeyService, service)
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// UnaryLogging logs the end of every unary RPC with its method, code and duration.
func UnaryLogging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, start, err)
		return resp, err
	}
}

// StreamLogging logs the end of every streaming RPC.
func StreamLogging(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, start, err)
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	attrs := []any{KeyMethod, method, KeyCode, status.Code(err).String(), KeyDuration, time.Since(start).String()}
	if caller, ok := identity.Caller(ctx); ok {
		attrs = append(attrs, KeyCaller, caller.String())
	}
	log.Log(ctx, level, "rpc", attrs...)
}
