package controls

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
)

// Store is what the controls need of storage.
type Store interface {
	SaveModelCalls(ctx context.Context, auditID string, calls []*secureauditv1.ModelCall) error
	ModelCalls(ctx context.Context, auditID string) ([]*secureauditv1.ModelCall, error)
	// TokenSamples returns a key's latest samples, oldest first.
	TokenSamples(ctx context.Context, key Key, limit int) ([]Sample, error)
	// LatestTokenSample returns the newest sample of an agent, provider and
	// requested model, whatever model answered.
	LatestTokenSample(ctx context.Context, agent, provider, requestModel string) (Sample, bool, error)
	SaveTokenSample(ctx context.Context, s Sample) error
	TokenKeys(ctx context.Context) ([]Key, error)
	SaveTokenAlert(ctx context.Context, a *secureauditv1.TokenAlert) error
	TokenAlerts(ctx context.Context, limit int) ([]*secureauditv1.TokenAlert, error)
	SaveAnomaly(ctx context.Context, a *secureauditv1.Anomaly) error
	Anomalies(ctx context.Context, auditID string, limit int) ([]*secureauditv1.Anomaly, error)
}

// Appender appends entries to the evidence log (the orchestrator's
// evidence.Log).
type Appender interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
}

// Evidence controls and criteria of the entries the monitor appends: every
// token alert is CC3.4 (model degradation) evidence, every anomaly event
// CC7.2 (anomalies monitored and evaluated) evidence.
const (
	ControlTokenBaseline = "token-baseline"
	ControlAnomaly       = "anomaly"
	CriterionTokens      = "CC3.4"
	CriterionAnomalies   = "CC7.2"
)

// Log attribute keys.
const (
	keyAuditID = "audit_id"
	keyKind    = "kind"
	keyKey     = "baseline"
	keyScore   = "score"
	keyError   = "error"
	keySummary = "summary"
)

// Monitor records model calls and anomalies per audit, keeps the token
// baselines and raises alerts.
type Monitor struct {
	store      Store
	log        *slog.Logger
	thresholds Thresholds
	webhook    string
	client     *http.Client
	now        func() time.Time
	evidence   Appender

	mu            sync.Mutex
	onModelChange func(ctx context.Context, answering string)

	alerts    metric.Int64Counter
	anomalies metric.Int64Counter
	perItem   metric.Float64Histogram
}

// Option configures a Monitor.
type Option func(*Monitor)

// WithThresholds sets the baseline thresholds.
func WithThresholds(t Thresholds) Option { return func(m *Monitor) { m.thresholds = t.normalized() } }

// WithWebhook posts every alert, as protojson, to url.
func WithWebhook(url string, client *http.Client) Option {
	return func(m *Monitor) {
		m.webhook = url
		if client != nil {
			m.client = client
		}
	}
}

// WithEvidence appends every token alert (CC3.4) and every anomaly event
// (CC7.2) to the evidence log, so that an exported bundle shows them.
func WithEvidence(a Appender) Option { return func(m *Monitor) { m.evidence = a } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(m *Monitor) { m.now = now } }

// New returns a Monitor storing in store and exporting metrics to mp.
func New(store Store, mp metric.MeterProvider, log *slog.Logger, opts ...Option) (*Monitor, error) {
	m := &Monitor{store: store, log: log, thresholds: Defaults, client: &http.Client{Timeout: 5 * time.Second}, now: time.Now}
	for _, o := range opts {
		o(m)
	}
	meter := mp.Meter("secureaudit.dev/services/orchestrator/controls")
	var err error
	if m.alerts, err = meter.Int64Counter("secureaudit.controls.token_alerts", metric.WithDescription("Token baseline alerts (CC3.4).")); err != nil {
		return nil, err
	}
	if m.anomalies, err = meter.Int64Counter("secureaudit.controls.anomalies", metric.WithDescription("Anomaly events (CC7.2).")); err != nil {
		return nil, err
	}
	if m.perItem, err = meter.Float64Histogram("secureaudit.controls.tokens_per_item", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens per finding or subject sent, per audit and baseline key.")); err != nil {
		return nil, err
	}
	return m, nil
}

// OnModelChange sets a hook called with "provider/model@template" whenever
// the answering model changes (the baseline regression runs on it).
func (m *Monitor) OnModelChange(fn func(ctx context.Context, answering string)) {
	m.mu.Lock()
	m.onModelChange = fn
	m.mu.Unlock()
}

// Agent is the only agent that calls models today.
const Agent = "risk-agent"

// Observe records an audit's model calls and anomalies, updates the token
// baselines and raises alerts. Failures to store are returned; the audit
// itself is not affected by them.
func (m *Monitor) Observe(ctx context.Context, auditID string, calls []*secureauditv1.ModelCall, anomalies []*secureauditv1.Anomaly) error {
	now := m.now()
	for _, a := range anomalies {
		if a.GetTime() == nil {
			a.Time = timestamppb.New(now)
		}
		if err := m.Record(ctx, a); err != nil {
			return err
		}
	}
	if len(calls) == 0 {
		return nil
	}
	if err := m.store.SaveModelCalls(ctx, auditID, calls); err != nil {
		return err
	}
	for _, s := range samples(auditID, now, calls) {
		if err := m.observe(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// samples groups successful calls by baseline key.
func samples(auditID string, now time.Time, calls []*secureauditv1.ModelCall) []Sample {
	type acc struct {
		s             Sample
		tokens, items uint64
	}
	byKey := map[Key]*acc{}
	for _, c := range calls {
		if c.GetErrorType() != "" {
			continue
		}
		k := Key{Agent: Agent, Provider: c.GetProvider(), ResponseModel: c.GetResponseModel(), TemplateVersion: c.GetTemplateVersion()}
		a, ok := byKey[k]
		if !ok {
			a = &acc{s: Sample{Key: k, RequestModel: c.GetRequestModel(), AuditID: auditID, Time: now}}
			byKey[k] = a
		}
		a.tokens += c.GetInputTokens() + c.GetOutputTokens()
		a.items += uint64(c.GetItems())
		a.s.Calls++
		if c.GetTruncated() {
			a.s.Truncated++
		}
	}
	out := make([]Sample, 0, len(byKey))
	for _, a := range byKey {
		a.s.PerItem = float64(a.tokens) / float64(max(a.items, 1))
		out = append(out, a.s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

func (m *Monitor) observe(ctx context.Context, s Sample) error {
	prev, ok, err := m.store.LatestTokenSample(ctx, s.Key.Agent, s.Key.Provider, s.RequestModel)
	if err != nil {
		return err
	}
	var alerts []Alert
	if ok && prev.Key.ResponseModel != s.Key.ResponseModel {
		alerts = append(alerts, Alert{Kind: ModelChange,
			Message: fmt.Sprintf("the answering model for %s changed from %q to %q (requested %q)", s.Key.Provider, prev.Key.ResponseModel, s.Key.ResponseModel, s.RequestModel)})
	}
	history, err := m.store.TokenSamples(ctx, s.Key, m.thresholds.Window)
	if err != nil {
		return err
	}
	_, found := m.thresholds.Evaluate(history, s)
	alerts = append(alerts, found...)
	if err := m.store.SaveTokenSample(ctx, s); err != nil {
		return err
	}
	m.perItem.Record(ctx, s.PerItem, metric.WithAttributes(keyAttrs(s.Key)...))
	for _, a := range alerts {
		if err := m.raise(ctx, s, a); err != nil {
			return err
		}
	}
	return nil
}

func keyAttrs(k Key) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("secureaudit.agent", k.Agent),
		attribute.String("gen_ai.provider.name", k.Provider),
		attribute.String("gen_ai.response.model", k.ResponseModel),
		attribute.String("secureaudit.template_version", k.TemplateVersion),
	}
}

var alertKinds = map[AlertKind]secureauditv1.TokenAlertKind{
	Spike:       secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_SPIKE,
	LevelShift:  secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_LEVEL_SHIFT,
	Truncation:  secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_TRUNCATION,
	ModelChange: secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_MODEL_CHANGE,
}

// raise stores, counts, logs and posts one alert, and records it as an
// anomaly event.
func (m *Monitor) raise(ctx context.Context, s Sample, a Alert) error {
	kind := alertKinds[a.Kind]
	alert := &secureauditv1.TokenAlert{
		Kind:     kind,
		Key:      keyProto(s.Key),
		AuditId:  s.AuditID,
		Time:     timestamppb.New(s.Time),
		Value:    a.Value,
		Baseline: a.Baseline,
		Score:    a.Score,
		Message:  a.Message,
	}
	if err := m.store.SaveTokenAlert(ctx, alert); err != nil {
		return err
	}
	m.alerts.Add(ctx, 1, metric.WithAttributes(append(keyAttrs(s.Key), attribute.String("secureaudit.alert", kind.String()))...))
	m.log.WarnContext(ctx, "token baseline alert", keyAuditID, s.AuditID, keyKind, kind.String(), keyKey, s.Key.String(), keyScore, a.Score, keySummary, a.Message)
	if err := m.appendEvidence(ctx, ControlTokenBaseline, CriterionTokens, s.AuditID, kind.String()+" on "+s.Key.String()+": "+a.Message, alert); err != nil {
		return err
	}
	if err := m.Record(ctx, &secureauditv1.Anomaly{
		Kind:    secureauditv1.AnomalyKind_ANOMALY_KIND_TOKEN_ALERT,
		AuditId: s.AuditID,
		Time:    alert.GetTime(),
		Source:  "orchestrator",
		Summary: kind.String() + ": " + a.Message,
		Evidence: map[string]string{
			"alert":            kind.String(),
			"provider":         s.Key.Provider,
			"response_model":   s.Key.ResponseModel,
			"request_model":    s.RequestModel,
			"template_version": s.Key.TemplateVersion,
			"value":            fmt.Sprintf("%.3f", a.Value),
			"baseline":         fmt.Sprintf("%.3f", a.Baseline),
			"score":            fmt.Sprintf("%.3f", a.Score),
		},
	}); err != nil {
		return err
	}
	m.post(ctx, alert)
	if a.Kind == ModelChange {
		m.mu.Lock()
		hook := m.onModelChange
		m.mu.Unlock()
		if hook != nil {
			hook(ctx, s.Key.Provider+"/"+s.Key.ResponseModel+"@"+s.Key.TemplateVersion)
		}
	}
	return nil
}

func keyProto(k Key) *secureauditv1.TokenBaselineKey {
	return &secureauditv1.TokenBaselineKey{Agent: k.Agent, Provider: k.Provider, ResponseModel: k.ResponseModel, TemplateVersion: k.TemplateVersion}
}

// post sends the alert to the webhook, if one is configured. Failures are
// logged: the alert is already stored.
func (m *Monitor) post(ctx context.Context, alert *secureauditv1.TokenAlert) {
	if m.webhook == "" {
		return
	}
	body, err := protojson.Marshal(alert)
	if err != nil {
		m.log.ErrorContext(ctx, "webhook: marshal alert", keyError, err.Error())
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.webhook, bytes.NewReader(body))
	if err != nil {
		m.log.ErrorContext(ctx, "webhook: request", keyError, err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		m.log.WarnContext(ctx, "webhook: post alert", keyError, err.Error())
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		m.log.WarnContext(ctx, "webhook: post alert", keyError, resp.Status)
	}
}

// Record stores one anomaly event, counts and logs it.
func (m *Monitor) Record(ctx context.Context, a *secureauditv1.Anomaly) error {
	if a.GetTime() == nil {
		a.Time = timestamppb.New(m.now())
	}
	if err := m.store.SaveAnomaly(ctx, a); err != nil {
		return fmt.Errorf("store anomaly: %w", err)
	}
	m.anomalies.Add(ctx, 1, metric.WithAttributes(attribute.String("secureaudit.anomaly", a.GetKind().String())))
	m.log.WarnContext(ctx, "anomaly", keyAuditID, a.GetAuditId(), keyKind, a.GetKind().String(), keySummary, a.GetSummary())
	summary := a.GetKind().String() + " from " + a.GetSource()
	if a.GetSummary() != "" {
		summary += ": " + a.GetSummary()
	}
	return m.appendEvidence(ctx, ControlAnomaly, CriterionAnomalies, a.GetAuditId(), summary, a)
}

// appendEvidence appends one alert entry about msg (stored as its protojson)
// to the evidence log, when one is set. The alert is already stored; a
// failure to append is returned so that the caller sees the evidence gap.
func (m *Monitor) appendEvidence(ctx context.Context, control, criterion, subject, summary string, msg proto.Message) error {
	if m.evidence == nil {
		return nil
	}
	data, err := protojson.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s evidence: %w", control, err)
	}
	if _, err := m.evidence.Append(ctx, evidence.Entry{
		Kind: evidence.KindAlert, Control: control, Criteria: []string{criterion},
		Subject: subject, Outcome: evidence.OutcomeFail, Summary: strings.ToValidUTF8(bounded(summary, 1024), ""), Data: data,
	}); err != nil {
		return fmt.Errorf("append %s evidence: %w", control, err)
	}
	return nil
}

// Baselines returns the current statistics of every key.
func (m *Monitor) Baselines(ctx context.Context) ([]*secureauditv1.TokenBaseline, error) {
	keys, err := m.store.TokenKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []*secureauditv1.TokenBaseline
	for _, k := range keys {
		history, err := m.store.TokenSamples(ctx, k, m.thresholds.Window)
		if err != nil {
			return nil, err
		}
		st := m.thresholds.compute(history)
		b := &secureauditv1.TokenBaseline{
			Key: keyProto(k), Samples: uint32(st.Samples), Warm: st.Warm, Median: st.Median, Mad: st.MAD,
			Ewma: st.EWMA, EwmaStddev: st.EWMAStd, TruncationRate: st.TruncRate,
		}
		if len(history) > 0 {
			b.UpdatedAt = timestamppb.New(history[len(history)-1].Time)
		}
		out = append(out, b)
	}
	return out, nil
}
