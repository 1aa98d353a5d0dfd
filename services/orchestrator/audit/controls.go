package audit

import (
	"context"
	"fmt"
	"log/slog"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Observer receives what the risk-agent reports about its reasoning step:
// the metered model calls and the anomaly events (the controls package).
type Observer interface {
	Observe(ctx context.Context, auditID string, calls []*secureauditv1.ModelCall, anomalies []*secureauditv1.Anomaly) error
}

// ObserveWith hands every assessment's model calls and anomalies to o.
func (r *Runner) ObserveWith(o Observer) {
	r.mu.Lock()
	r.observer = o
	r.mu.Unlock()
}

// observe passes the assessment's metering and anomalies on. A failure is
// logged: it does not fail the audit, whose findings stand.
func (r *Runner) observe(ctx context.Context, a *secureauditv1.Audit, s *secureauditv1.AssessSummary, log *slog.Logger) {
	r.mu.Lock()
	o := r.observer
	r.mu.Unlock()
	if o == nil {
		return
	}
	if err := o.Observe(ctx, a.GetId(), s.GetModelCalls(), s.GetAnomalies()); err != nil {
		log.ErrorContext(ctx, "record controls", keyError, err.Error())
		return
	}
	if n := len(s.GetAnomalies()); n > 0 {
		r.event(ctx, a, fmt.Sprintf("%d anomaly events recorded (secureaudit controls anomalies)", n))
	}
}
