package reasoning

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Bucket boundaries for the GenAI histograms, as the semantic conventions
// advise (the generated instruments set none).
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
)

// Meter records model calls as OpenTelemetry GenAI metrics
// (gen_ai.client.token.usage, gen_ai.client.operation.duration).
type Meter struct {
	tokens   genaiconv.ClientTokenUsage
	duration genaiconv.ClientOperationDuration
}

// NewMeter returns a Meter on mp; a nil mp records nothing.
func NewMeter(mp metric.MeterProvider) (*Meter, error) {
	var m metric.Meter
	if mp != nil {
		m = mp.Meter("secureaudit.dev/services/risk-agent/reasoning")
	}
	tokens, err := genaiconv.NewClientTokenUsage(m, metric.WithExplicitBucketBoundaries(tokenBuckets...))
	if err != nil {
		return nil, err
	}
	duration, err := genaiconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, err
	}
	return &Meter{tokens: tokens, duration: duration}, nil
}

// Record records one call. Token counts are recorded only when the call
// returned some (the conventions say to record nothing without a count).
func (m *Meter) Record(ctx context.Context, c *secureauditv1.ModelCall) {
	op := genaiconv.OperationNameAttr(c.GetOperation())
	provider := genaiconv.ProviderNameAttr(semconvProvider(c.GetProvider()))
	attrs := []attribute.KeyValue{m.tokens.AttrRequestModel(c.GetRequestModel())}
	if c.GetResponseModel() != "" {
		attrs = append(attrs, m.tokens.AttrResponseModel(c.GetResponseModel()))
	}
	durAttrs := append([]attribute.KeyValue(nil), attrs...)
	if c.GetErrorType() != "" {
		durAttrs = append(durAttrs, m.duration.AttrErrorType(genaiconv.ErrorTypeAttr(c.GetErrorType())))
	}
	m.duration.Record(ctx, c.GetLatency().AsDuration().Seconds(), op, provider, durAttrs...)
	if c.GetErrorType() != "" || c.GetInputTokens()+c.GetOutputTokens() == 0 {
		return
	}
	m.tokens.Record(ctx, int64(c.GetInputTokens()), op, provider, genaiconv.TokenTypeInput, attrs...)
	m.tokens.Record(ctx, int64(c.GetOutputTokens()), op, provider, genaiconv.TokenTypeOutput, attrs...)
}
