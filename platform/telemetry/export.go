package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The OpenTelemetry SDK environment variables this package reads itself.
// The OTLP exporters read the rest of the standard set: the endpoint,
// headers, timeout, compression and TLS files, OTEL_EXPORTER_OTLP_* and
// their _TRACES_ and _METRICS_ forms; the periodic metric reader reads
// OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT.
const (
	EnvSDKDisabled     = "OTEL_SDK_DISABLED"
	EnvTracesExporter  = "OTEL_TRACES_EXPORTER"
	EnvMetricsExporter = "OTEL_METRICS_EXPORTER"
	EnvProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
)

// OTLP protocols (OTEL_EXPORTER_OTLP_PROTOCOL). http/json is not offered by
// the Go exporters.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Exporter names (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER).
const (
	ExporterOTLP       = "otlp"
	ExporterNone       = "none"
	ExporterPrometheus = "prometheus"
)

// signal is one OpenTelemetry signal's environment.
type signal struct {
	name     string // "traces", "metrics"
	exporter string // OTEL_<SIGNAL>_EXPORTER
	allowed  []string
}

var (
	tracesSignal  = signal{name: "traces", exporter: EnvTracesExporter, allowed: []string{ExporterOTLP, ExporterNone}}
	metricsSignal = signal{name: "metrics", exporter: EnvMetricsExporter, allowed: []string{ExporterOTLP, ExporterPrometheus, ExporterNone}}
)

// otlpEnabled reports whether the signal is exported over OTLP. The
// exporters are the comma-separated list in OTEL_<SIGNAL>_EXPORTER. When it
// is unset, OTLP is used only if an endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT): the
// specification's default, OTLP to localhost, would only log failed exports
// in a pod without a collector beside it. OTEL_SDK_DISABLED=true turns every
// export off. For metrics, "prometheus" names the scrape endpoint, which is
// always served on the health port.
func otlpEnabled(lookup func(string) (string, bool), s signal) (bool, error) {
	if v, _ := lookup(EnvSDKDisabled); strings.EqualFold(strings.TrimSpace(v), "true") {
		return false, nil
	}
	v, ok := lookup(s.exporter)
	if !ok || strings.TrimSpace(v) == "" {
		_, all := lookup(EnvEndpoint)
		_, one := lookup("OTEL_EXPORTER_OTLP_" + strings.ToUpper(s.name) + "_ENDPOINT")
		return all || one, nil
	}
	otlp := false
	for _, name := range strings.Split(v, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		ok := false
		for _, a := range s.allowed {
			ok = ok || name == a
		}
		if !ok {
			return false, fmt.Errorf("%s=%q: %q is not one of %s", s.exporter, v, name, strings.Join(s.allowed, ", "))
		}
		otlp = otlp || name == ExporterOTLP
	}
	return otlp, nil
}

// protocol returns the OTLP protocol of the signal:
// OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// else http/protobuf, the specification's default.
func protocol(lookup func(string) (string, bool), s signal) (string, error) {
	name := "OTEL_EXPORTER_OTLP_" + strings.ToUpper(s.name) + "_PROTOCOL"
	v, ok := lookup(name)
	if !ok {
		name = EnvProtocol
		v, ok = lookup(name)
	}
	if !ok || v == "" {
		return ProtocolHTTPProtobuf, nil
	}
	switch v {
	case ProtocolGRPC, ProtocolHTTPProtobuf:
		return v, nil
	}
	return "", fmt.Errorf("%s=%q: want %s or %s", name, v, ProtocolGRPC, ProtocolHTTPProtobuf)
}

// spanExporter returns the OTLP span exporter the environment asks for, or
// nil when traces are not exported over OTLP.
func spanExporter(ctx context.Context, lookup func(string) (string, bool)) (sdktrace.SpanExporter, error) {
	on, err := otlpEnabled(lookup, tracesSignal)
	if err != nil || !on {
		return nil, err
	}
	proto, err := protocol(lookup, tracesSignal)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if proto == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (%s): %w", proto, err)
	}
	return exp, nil
}

// metricExporter returns the OTLP metric exporter the environment asks for,
// or nil when metrics are not exported over OTLP.
func metricExporter(ctx context.Context, lookup func(string) (string, bool)) (sdkmetric.Exporter, error) {
	on, err := otlpEnabled(lookup, metricsSignal)
	if err != nil || !on {
		return nil, err
	}
	proto, err := protocol(lookup, metricsSignal)
	if err != nil {
		return nil, err
	}
	var exp sdkmetric.Exporter
	if proto == ProtocolGRPC {
		exp, err = otlpmetricgrpc.New(ctx)
	} else {
		exp, err = otlpmetrichttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP metric exporter (%s): %w", proto, err)
	}
	return exp, nil
}
