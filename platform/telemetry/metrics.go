package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

// MetricsFileInterval is how often metrics are appended to a metrics file.
const MetricsFileInterval = 30 * time.Second

// Metrics is a service's meter provider and where its metrics go: always
// to a Prometheus registry (with the Go runtime and process collectors)
// that Handler serves for a scrape, over OTLP when the OTEL_* environment
// asks for it, and to a file of JSON lines when one is named.
type Metrics struct {
	Provider *sdkmetric.MeterProvider
	registry *prometheus.Registry
	file     *os.File
}

// NewMetrics builds the meter provider of the service. metricsFile, when
// not empty, receives the metrics as JSON every MetricsFileInterval and at
// shutdown.
func NewMetrics(service, metricsFile string) (*Metrics, error) {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := otelprom.New(otelprom.WithRegisterer(m.registry))
	if err != nil {
		return nil, fmt.Errorf("create Prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(resource.NewSchemaless(semconv.ServiceName(service))), sdkmetric.WithReader(prom)}
	exp, err := metricExporter(context.Background(), osLookup)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		// Interval and timeout from OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT.
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if metricsFile != "" {
		f, err := os.OpenFile(metricsFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open metrics file: %w", err)
		}
		fexp, err := stdoutmetric.New(stdoutmetric.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("create metrics file exporter: %w", err)
		}
		m.file = f
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(fexp, sdkmetric.WithInterval(MetricsFileInterval))))
	}
	m.Provider = sdkmetric.NewMeterProvider(opts...)
	return m, nil
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Shutdown exports what is left and closes the provider and the file.
func (m *Metrics) Shutdown(ctx context.Context) error {
	err := m.Provider.Shutdown(ctx)
	if m.file != nil {
		err = errors.Join(err, m.file.Close())
	}
	return err
}
