package controls

import (
	"context"
	"log/slog"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// The messages and attribute keys platform/authz logs a refused call with.
const (
	msgDenied          = "denied call"
	msgUnauthenticated = "unauthenticated call"
	attrMethod         = "method"
	attrCaller         = "caller"
	attrReason         = "reason"
)

// trustDomain is the prefix of the SecureAudit workload identities.
const trustDomain = "spiffe://secureaudit.local/"

// Recorder records anomaly events.
type Recorder interface {
	Record(ctx context.Context, a *secureauditv1.Anomaly) error
}

// Tap wraps a log handler so that the refusals platform/authz logs for this
// server (a caller without a valid certificate, or one denied a method)
// are also recorded as anomaly events. Every record still reaches next.
func Tap(next slog.Handler, rec Recorder) slog.Handler {
	return &tap{next: next, rec: rec}
}

type tap struct {
	next  slog.Handler
	rec   Recorder
	attrs []slog.Attr
}

func (t *tap) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t *tap) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == msgDenied || r.Message == msgUnauthenticated {
		t.record(ctx, r)
	}
	return t.next.Handle(ctx, r)
}

func (t *tap) record(ctx context.Context, r slog.Record) {
	evidence := map[string]string{}
	collect := func(a slog.Attr) bool {
		switch a.Key {
		case attrMethod, attrCaller, attrReason:
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
	switch {
	case r.Message == msgUnauthenticated:
		a.Kind = secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY
		a.Summary = "call without a valid SecureAudit certificate to " + evidence[attrMethod]
	case !strings.HasPrefix(caller, trustDomain):
		a.Kind = secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY
		a.Summary = "call from unexpected identity " + caller + " to " + evidence[attrMethod]
	default:
		a.Kind = secureauditv1.AnomalyKind_ANOMALY_KIND_DENIED_RPC
		a.Summary = caller + " denied " + evidence[attrMethod]
	}
	a.Summary = bounded(a.Summary, 1024)
	// The handler must not fail the call it logs; a storage error is only
	// reported on to the next handler.
	if err := t.rec.Record(context.WithoutCancel(ctx), a); err != nil {
		_ = t.next.Handle(ctx, slog.NewRecord(r.Time, slog.LevelError, "record anomaly: "+err.Error(), r.PC))
	}
}

func (t *tap) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &tap{next: t.next.WithAttrs(attrs), rec: t.rec, attrs: append(append([]slog.Attr(nil), t.attrs...), attrs...)}
}

func (t *tap) WithGroup(name string) slog.Handler {
	return &tap{next: t.next.WithGroup(name), rec: t.rec, attrs: t.attrs}
}

func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
