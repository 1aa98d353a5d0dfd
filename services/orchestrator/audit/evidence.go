package audit

import (
	"context"
	"encoding/json"
	"fmt"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
)

// Recorder appends entries to the evidence log.
type Recorder interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
}

// Gate decides whether an audit may use the agents; a non-nil error names
// why not (a quarantined agent, a standing credential violation) and fails
// the audit with that message.
type Gate interface {
	Admit(ctx context.Context) error
}

// RecordTo makes the runner append a summary of every finished audit to rec.
func (r *Runner) RecordTo(rec Recorder) {
	r.mu.Lock()
	r.evidence = rec
	r.mu.Unlock()
}

// GateWith makes the runner ask g before each audit uses the agents.
func (r *Runner) GateWith(g Gate) {
	r.mu.Lock()
	r.gates = append(r.gates, g)
	r.mu.Unlock()
}

// admit asks every gate.
func (r *Runner) admit(ctx context.Context) error {
	r.mu.Lock()
	gates := append([]Gate(nil), r.gates...)
	r.mu.Unlock()
	for _, g := range gates {
		if err := g.Admit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// auditSummary is the data of an audit.summary evidence entry.
type auditSummary struct {
	AuditID     string `json:"auditId"`
	Cluster     string `json:"cluster,omitempty"`
	State       string `json:"state"`
	RequestedBy string `json:"requestedBy,omitempty"`
	Error       string `json:"error,omitempty"`
	Critical    uint32 `json:"critical"`
	High        uint32 `json:"high"`
	Medium      uint32 `json:"medium"`
	Low         uint32 `json:"low"`
	Info        uint32 `json:"info"`
	Directory   bool   `json:"directoryAvailable"`
}

// record appends the audit's summary to the evidence log, if one is set.
func (r *Runner) record(ctx context.Context, a *secureauditv1.Audit) {
	r.mu.Lock()
	rec := r.evidence
	r.mu.Unlock()
	if rec == nil {
		return
	}
	s := a.GetSummary()
	data, err := json.Marshal(auditSummary{
		AuditID: a.GetId(), Cluster: a.GetCluster(), State: a.GetState().String(), RequestedBy: a.GetRequestedBy(),
		Error: a.GetError(), Critical: s.GetCritical(), High: s.GetHigh(), Medium: s.GetMedium(), Low: s.GetLow(), Info: s.GetInfo(),
		Directory: a.GetDirectoryAvailable(),
	})
	if err != nil {
		r.log.ErrorContext(ctx, "encode audit evidence", keyAuditID, a.GetId(), keyError, err.Error())
		return
	}
	outcome := evidence.OutcomePass
	summary := fmt.Sprintf("audit of %s %s: %d critical, %d high, %d medium, %d low, %d info findings",
		a.GetCluster(), a.GetState(), s.GetCritical(), s.GetHigh(), s.GetMedium(), s.GetLow(), s.GetInfo())
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		outcome = evidence.OutcomeFail
		summary = fmt.Sprintf("audit of %s %s: %s", a.GetCluster(), a.GetState(), a.GetError())
	}
	if _, err := rec.Append(ctx, evidence.Entry{
		Kind: evidence.KindAuditSummary, Control: "audit", Criteria: []string{"CC4.1", "CC6.3"},
		Subject: a.GetId(), Outcome: outcome, Summary: summary, Data: data,
	}); err != nil {
		r.log.ErrorContext(ctx, "append audit evidence", keyAuditID, a.GetId(), keyError, err.Error())
	}
}
