package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP collector in the test: it records the service name
// and name of every span and metric data point it is sent, over OTLP/gRPC
// and OTLP/HTTP (protobuf).
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	colmetricpb.UnimplementedMetricsServiceServer
	mu      sync.Mutex
	spans   []string // service/span
	metrics []string // service/metric
}

func serviceName(r *resourcepb.Resource) string {
	for _, kv := range r.GetAttributes() {
		if kv.GetKey() == "service.name" {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.addSpans(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) addSpans(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, serviceName(rs.GetResource())+"/"+s.GetName())
			}
		}
	}
}

func (r *receiver) addMetrics(req *colmetricpb.ExportMetricsServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				r.metrics = append(r.metrics, serviceName(rm.GetResource())+"/"+m.GetName())
			}
		}
	}
}

type metricsService struct {
	colmetricpb.UnimplementedMetricsServiceServer
	r *receiver
}

func (m metricsService) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	m.r.addMetrics(req)
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// serveGRPC starts an OTLP/gRPC receiver and returns its endpoint URL.
func (r *receiver) serveGRPC(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, r)
	colmetricpb.RegisterMetricsServiceServer(srv, metricsService{r: r})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return "http://" + lis.Addr().String()
}

// serveHTTP starts an OTLP/HTTP receiver (binary protobuf, the paths
// /v1/traces and /v1/metrics) and returns its endpoint URL.
func (r *receiver) serveHTTP(t *testing.T) string {
	mux := http.NewServeMux()
	read := func(w http.ResponseWriter, req *http.Request, m proto.Message) bool {
		if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			t.Errorf("%s: Content-Type %q, want application/x-protobuf", req.URL.Path, ct)
		}
		body, err := io.ReadAll(req.Body)
		if err == nil {
			err = proto.Unmarshal(body, m)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		return true
	}
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		var m coltracepb.ExportTraceServiceRequest
		if read(w, req, &m) {
			r.addSpans(&m)
			data, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
			w.Write(data)
		}
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		var m colmetricpb.ExportMetricsServiceRequest
		if read(w, req, &m) {
			r.addMetrics(&m)
			data, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
			w.Write(data)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestOTLPExport configures the exporters only through the standard OTEL_*
// variables, as an adopter's Deployment would, for each protocol, and
// requires the span and the metric a service records to reach the
// receiver with the service's name.
func TestOTLPExport(t *testing.T) {
	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		t.Run(protocol, func(t *testing.T) {
			r := &receiver{}
			endpoint := r.serveHTTP
			if protocol == ProtocolGRPC {
				endpoint = r.serveGRPC
			}
			t.Setenv(EnvEndpoint, endpoint(t))
			t.Setenv(EnvProtocol, protocol)
			t.Setenv(EnvTracesExporter, "otlp")
			t.Setenv(EnvMetricsExporter, "otlp,prometheus")
			tr, err := NewTracing("orchestrator", "")
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewMetrics("orchestrator", "")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, span := tr.Provider.Tracer("test").Start(ctx, "audit")
			span.End()
			counter, err := m.Provider.Meter("test").Int64Counter("secureaudit.test.audits")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(ctx, 3)
			// Shutdown flushes the batch of spans and the last collection.
			if err := tr.Shutdown(ctx); err != nil {
				t.Fatalf("flush traces: %v", err)
			}
			if err := m.Shutdown(ctx); err != nil {
				t.Fatalf("flush metrics: %v", err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if diff := cmp.Diff([]string{"orchestrator/audit"}, r.spans); diff != "" {
				t.Errorf("spans received (-want +got):\n%s", diff)
			}
			if !slices.Contains(r.metrics, "orchestrator/secureaudit.test.audits") {
				t.Errorf("metrics received %v, want orchestrator/secureaudit.test.audits among them", r.metrics)
			}
		})
	}
}

// TestExportEnvironment pins how the OTEL_* variables select the OTLP
// exporters and their protocol.
func TestExportEnvironment(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		traces        bool
		metrics       bool
		traceProtocol string
		metricProto   string
		wantErr       bool
	}{
		{name: "nothing set: no export", env: nil, traceProtocol: ProtocolHTTPProtobuf, metricProto: ProtocolHTTPProtobuf},
		{name: "an endpoint turns both on", env: map[string]string{EnvEndpoint: "http://collector:4318"}, traces: true, metrics: true, traceProtocol: ProtocolHTTPProtobuf, metricProto: ProtocolHTTPProtobuf},
		{name: "a signal's endpoint turns that signal on", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, traces: true, traceProtocol: ProtocolHTTPProtobuf, metricProto: ProtocolHTTPProtobuf},
		{name: "exporters named", env: map[string]string{EnvTracesExporter: "otlp", EnvMetricsExporter: "prometheus", EnvProtocol: "grpc"}, traces: true, traceProtocol: ProtocolGRPC, metricProto: ProtocolGRPC},
		{name: "none beats an endpoint", env: map[string]string{EnvEndpoint: "http://collector:4318", EnvTracesExporter: "none", EnvMetricsExporter: "none"}, traceProtocol: ProtocolHTTPProtobuf, metricProto: ProtocolHTTPProtobuf},
		{name: "disabled SDK", env: map[string]string{EnvSDKDisabled: "true", EnvTracesExporter: "otlp", EnvMetricsExporter: "otlp"}, traceProtocol: ProtocolHTTPProtobuf, metricProto: ProtocolHTTPProtobuf},
		{name: "per-signal protocol", env: map[string]string{EnvProtocol: "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"}, traceProtocol: ProtocolGRPC, metricProto: ProtocolHTTPProtobuf},
		{name: "unknown exporter", env: map[string]string{EnvTracesExporter: "zipkin"}, wantErr: true},
		{name: "unsupported protocol", env: map[string]string{EnvProtocol: "http/json"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			traces, err1 := otlpEnabled(lookup, tracesSignal)
			metrics, err2 := otlpEnabled(lookup, metricsSignal)
			tp, err3 := protocol(lookup, tracesSignal)
			mp, err4 := protocol(lookup, metricsSignal)
			if gotErr := err1 != nil || err2 != nil || err3 != nil || err4 != nil; gotErr != tt.wantErr {
				t.Fatalf("errors %v %v %v %v, want an error: %v", err1, err2, err3, err4, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			got := []any{traces, metrics, tp, mp}
			want := []any{tt.traces, tt.metrics, tt.traceProtocol, tt.metricProto}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("traces, metrics, protocols (-want +got):\n%s", diff)
			}
		})
	}
}
