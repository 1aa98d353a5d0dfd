package controls

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
)

// The messages and attribute keys platform/authz logs a refused call with.
const (
	msgDenied          = "denied call"
	msgUnauthenticated = "unauthenticated call"
	attrMethod         = "method"
	attrCaller         = "caller"
	attrReason         = "reason"
	attrAddress        = "address"
)

// trustDomain is the prefix of the SecureAudit workload identities.
func trustDomain() string { return "spiffe://" + identity.Domain().Name() + "/" }

// Recorder records anomaly events.
type Recorder interface {
	Record(ctx context.Context, a *secureauditv1.Anomaly) error
}

// DefaultRefusalWindow is how long refusals from one source to one method
// are counted together before they are stored as one anomaly event.
const DefaultRefusalWindow = 10 * time.Second

// maxRefusalSources bounds the sources counted at once; past it, refusals
// are counted under one source, "(other sources)".
const maxRefusalSources = 1024

// Tap wraps a log handler so that the refusals platform/authz logs for this
// server (a caller without a valid certificate, or one denied a method)
// are also recorded as anomaly events. Every record still reaches next. It
// is NewTap with DefaultRefusalWindow.
func Tap(next slog.Handler, rec Recorder) slog.Handler {
	return NewTap(next, rec, DefaultRefusalWindow)
}

// TapHandler is the handler NewTap returns.
type TapHandler struct {
	next  slog.Handler
	agg   *aggregator
	attrs []slog.Attr
}

// NewTap is Tap with refusals rate-limited and aggregated per source before
// they reach the store: the first refusal from a source (a verified
// identity, or the address of an unauthenticated caller) to a method is
// recorded at once; further ones within window are counted and recorded as
// one event when the window ends (evidence "count", "first_refused_at",
// "refused_at"), so a flood of calls writes a few rows, the counts stay
// exact, and a denial of a valid identity is never lost among them. Flush
// records what is being counted.
func NewTap(next slog.Handler, rec Recorder, window time.Duration) *TapHandler {
	return &TapHandler{next: next, agg: &aggregator{rec: rec, window: window, open: map[tapKey]*counting{}, log: next}}
}

// Flush records the refusals counted in open windows (at shutdown).
func (t *TapHandler) Flush(ctx context.Context) {
	t.agg.mu.Lock()
	open := t.agg.open
	t.agg.open = map[tapKey]*counting{}
	t.agg.mu.Unlock()
	for _, c := range open {
		c.timer.Stop()
		if c.count > 0 {
			t.agg.record(ctx, c)
		}
	}
}

type tapKey struct{ kind, source, method string }

type counting struct {
	anomaly     *secureauditv1.Anomaly // the first refusal's event
	count       uint64
	first, last time.Time
	timer       *time.Timer
}

type aggregator struct {
	rec    Recorder
	window time.Duration
	log    slog.Handler

	mu   sync.Mutex
	open map[tapKey]*counting
}

// add counts one refusal; it records it at once when no window is open for
// its source and method.
func (g *aggregator) add(ctx context.Context, key tapKey, a *secureauditv1.Anomaly, at time.Time) {
	g.mu.Lock()
	if _, ok := g.open[key]; !ok && len(g.open) >= maxRefusalSources {
		key = tapKey{kind: key.kind, source: otherSources, method: otherSources}
		a.Summary = "refused calls from further sources"
		a.Evidence = map[string]string{"method": otherSources}
	}
	if c, ok := g.open[key]; ok {
		if c.count == 0 {
			c.first = at
		}
		c.count++
		c.last = at
		g.mu.Unlock()
		return
	}
	c := &counting{anomaly: a}
	g.open[key] = c
	c.timer = time.AfterFunc(g.window, func() { g.close(key, c) })
	g.mu.Unlock()
	one := proto.Clone(a).(*secureauditv1.Anomaly)
	one.Evidence["count"] = "1"
	one.Time = timestamppb.New(at)
	g.store(ctx, one)
}

// close ends a window: what it counted is recorded as one event, and a new
// window opens while refusals keep coming.
func (g *aggregator) close(key tapKey, c *counting) {
	g.mu.Lock()
	if g.open[key] != c {
		g.mu.Unlock()
		return
	}
	if c.count == 0 {
		delete(g.open, key)
		g.mu.Unlock()
		return
	}
	done := *c
	c.count = 0
	c.timer = time.AfterFunc(g.window, func() { g.close(key, c) })
	g.mu.Unlock()
	g.record(context.Background(), &done)
}

func (g *aggregator) record(ctx context.Context, c *counting) {
	a := proto.Clone(c.anomaly).(*secureauditv1.Anomaly)
	a.Evidence["count"] = strconv.FormatUint(c.count, 10)
	a.Evidence["first_refused_at"] = c.first.Format(time.RFC3339Nano)
	a.Evidence["refused_at"] = c.last.Format(time.RFC3339Nano)
	a.Time = timestamppb.New(c.last)
	a.Summary = bounded(fmt.Sprintf("%s (%d more times)", a.GetSummary(), c.count), 1024)
	g.store(ctx, a)
}

func (g *aggregator) store(ctx context.Context, a *secureauditv1.Anomaly) {
	// The handler must not fail the call it logs; a storage error is only
	// reported on to the next handler.
	if err := g.rec.Record(context.WithoutCancel(ctx), a); err != nil {
		_ = g.log.Handle(ctx, slog.NewRecord(time.Now(), slog.LevelError, "record anomaly: "+err.Error(), 0))
	}
}

// otherSources names the source counting refusals past maxRefusalSources.
const otherSources = "(other sources)"

// Enabled implements slog.Handler.
func (t *TapHandler) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (t *TapHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == msgDenied || r.Message == msgUnauthenticated {
		t.record(ctx, r)
	}
	return t.next.Handle(ctx, r)
}

func (t *TapHandler) record(ctx context.Context, r slog.Record) {
	evidence := map[string]string{}
	collect := func(a slog.Attr) bool {
		switch a.Key {
		case attrMethod, attrCaller, attrReason, attrAddress:
			evidence[a.Key] = bounded(a.Value.String(), 2048)
		}
		return true
	}
	for _, a := range t.attrs {
		collect(a)
	}
	r.Attrs(collect)
	a := &secureauditv1.Anomaly{Source: "orchestrator", Evidence: evidence}
	caller := evidence[attrCaller]
	source := caller
	switch {
	case r.Message == msgUnauthenticated:
		a.Kind = secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY
		a.Summary = "call without a valid SecureAudit certificate to " + evidence[attrMethod]
		source = evidence[attrAddress]
		if source != "" {
			a.Summary += " from " + source
		}
	case !strings.HasPrefix(caller, trustDomain()):
		a.Kind = secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY
		a.Summary = "call from unexpected identity " + caller + " to " + evidence[attrMethod]
	default:
		a.Kind = secureauditv1.AnomalyKind_ANOMALY_KIND_DENIED_RPC
		a.Summary = caller + " denied " + evidence[attrMethod]
	}
	a.Summary = bounded(a.Summary, 1024)
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	t.agg.add(ctx, tapKey{kind: a.Kind.String(), source: source, method: evidence[attrMethod]}, a, at)
}

// WithAttrs implements slog.Handler; the copies share the counting.
func (t *TapHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &TapHandler{next: t.next.WithAttrs(attrs), agg: t.agg, attrs: append(append([]slog.Attr(nil), t.attrs...), attrs...)}
}

// WithGroup implements slog.Handler.
func (t *TapHandler) WithGroup(name string) slog.Handler {
	return &TapHandler{next: t.next.WithGroup(name), agg: t.agg, attrs: t.attrs}
}

func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
