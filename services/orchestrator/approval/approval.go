// Package approval enforces the agents' scope approvals (SOC 2 CC5.2): each
// agent presents the digest of the scope manifest it enforces when the
// orchestrator connects (in the response headers of every RPC, the health
// check's included); a digest without a recorded approval, or one that
// changed since it was approved, quarantines the agent, and the orchestrator
// refuses to run audits through it, saying why. Approvals (who, when, ticket,
// digest) and quarantines are appended to the evidence log. The package also
// records the calls the orchestrator serves and makes, and the periodic
// review compares them with the manifests.
package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/storage"
)

// Development approvals are named so that nobody mistakes them for a review.
const (
	DevelopmentApprover = "DEVELOPMENT AUTO-APPROVAL (not a human review)"
	DevelopmentTicket   = "DEVELOPMENT-ONLY"
)

// Criteria are the SOC 2 criteria scope evidence supports.
var Criteria = []string{"CC5.2", "CC6.2"}

// Recorder appends entries to the evidence log.
type Recorder interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
}

// Agent is one agent the orchestrator is configured to use.
type Agent struct {
	Workload string
	Conn     grpc.ClientConnInterface
}

// Registry holds approvals, checks agents against them and records calls.
type Registry struct {
	db        *storage.DB
	rec       Recorder
	agents    []Agent
	manifests map[string]*scope.Manifest
	log       *slog.Logger
	now       func() time.Time
	calls     chan rpc.Call

	refuseCredential bool
	// people verifies decision makers' ID tokens; unverified accepts typed
	// names (development only).
	people     Verifier
	unverified bool

	onRefusals func(ctx context.Context, workload string, newly uint64, r rpc.Refusals)

	mu       sync.Mutex
	state    map[string]string            // workload -> last state and digest, for alerts on change
	refusals map[string]uint64            // workload -> refusal count last seen
	entries  map[string]map[string]uint64 // workload -> refusal entry key -> count last seen
}

// OnRefusals sets what to do when an agent presents calls it refused since
// the last check: newly is how many, r the agent's count and, per source,
// method and outcome, the refusals new since the last check (each entry's
// Count is how many are new). The orchestrator records them as CC7.2
// anomalies.
func (r *Registry) OnRefusals(f func(ctx context.Context, workload string, newly uint64, refusals rpc.Refusals)) {
	r.onRefusals = f
}

// noteRefusals reports refusals an agent presents that were not seen before.
func (r *Registry) noteRefusals(ctx context.Context, workload, header string) {
	if header == "" || r.onRefusals == nil {
		return
	}
	var got rpc.Refusals
	if err := json.Unmarshal([]byte(header), &got); err != nil {
		r.log.WarnContext(ctx, "unreadable refusals header", "workload", workload, "error", err.Error())
		return
	}
	r.mu.Lock()
	seen := r.refusals[workload]
	prev := r.entries[workload]
	if got.Count < seen {
		seen, prev = 0, nil // the agent restarted
	}
	r.refusals[workload] = got.Count
	now := map[string]uint64{}
	var fresh []authz.Refusal
	for _, e := range got.Recent {
		if e.Count == 0 {
			e.Count = 1 // a header of one entry per call
		}
		k := e.Key()
		now[k] = e.Count
		if d := e.Count - min(prev[k], e.Count); d > 0 {
			e.Count = d
			fresh = append(fresh, e)
		}
	}
	if r.entries == nil {
		r.entries = map[string]map[string]uint64{}
	}
	r.entries[workload] = now
	r.mu.Unlock()
	if got.Count > seen {
		r.onRefusals(ctx, workload, got.Count-seen, rpc.Refusals{Count: got.Count, Recent: fresh})
	}
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// New returns the registry over the orchestrator's database (its tables
// come with db's migrations). manifests are the declared manifests the
// review compares behaviour with (the ones bundled with the orchestrator),
// by workload.
func New(db *storage.DB, rec Recorder, manifests map[string]*scope.Manifest, log *slog.Logger, opts ...Option) *Registry {
	r := &Registry{db: db, rec: rec, manifests: manifests, log: log, now: time.Now,
		calls: make(chan rpc.Call, 4096), state: map[string]string{}, refusals: map[string]uint64{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// SetAgents sets the agents Check asks, before the first check.
func (r *Registry) SetAgents(agents []Agent) { r.agents = agents }

// Observe records a call; it never blocks (a full buffer drops the call and
// logs it).
func (r *Registry) Observe(_ context.Context, c rpc.Call) {
	select {
	case r.calls <- c:
	default:
		r.log.Warn("scope observation dropped: buffer full", "method", c.Method)
	}
}

// Run writes observed calls until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-r.calls:
			if err := r.store(ctx, c); err != nil {
				r.log.Error("record observed call", "error", err.Error())
			}
		}
	}
}

// Flush writes the calls observed so far.
func (r *Registry) Flush(ctx context.Context) error {
	for {
		select {
		case c := <-r.calls:
			if err := r.store(ctx, c); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (r *Registry) store(ctx context.Context, c rpc.Call) error {
	period, err := r.period(ctx)
	if err != nil {
		return err
	}
	now := r.now().UnixNano()
	_, err = r.db.ExecContext(ctx, `INSERT INTO scope_calls (period, server, method, caller, code, count, first_ns, last_ns)
		VALUES (?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (period, server, method, caller, code) DO UPDATE SET count = scope_calls.count + 1, last_ns = excluded.last_ns`,
		period, c.Server, c.Method, c.Caller, int(c.Code), now, now)
	if err != nil {
		return fmt.Errorf("record call: %w", err)
	}
	return nil
}

// period is the number of reviews recorded so far.
func (r *Registry) period(ctx context.Context) (int64, error) {
	var n int64
	if err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scope_reviews`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count reviews: %w", err)
	}
	return n, nil
}

// Approve records an approval and appends it to the evidence log.
func (r *Registry) Approve(ctx context.Context, a *secureauditv1.ScopeApproval) (*secureauditv1.ScopeApproval, error) {
	now := r.now().UTC()
	a.ApprovedAt = timestamppb.New(now)
	data, err := json.Marshal(map[string]any{
		"workload": a.GetWorkload(), "digest": a.GetDigest(), "approver": a.GetApprover(), "caller": a.GetCaller(),
		"ticket": a.GetTicket(), "reason": a.GetReason(), "development": a.GetDevelopment(),
		"approved_by": personJSON(a.GetApprovedBy()), "requested_by": personJSON(a.GetRequestedBy()),
	})
	if err != nil {
		return nil, fmt.Errorf("encode approval: %w", err)
	}
	summary := fmt.Sprintf("%s approved scope manifest %s of %s (ticket %s)", a.GetApprover(), a.GetDigest(), a.GetWorkload(), a.GetTicket())
	if a.GetRequestedBy() != nil {
		summary += ", requested by " + people.Display(a.GetRequestedBy())
	}
	if a.GetDevelopment() {
		summary = "DEVELOPMENT auto-approval, not a human review: " + summary
	}
	idx, err := r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindApproval, Control: "scope", Criteria: Criteria,
		Subject: a.GetWorkload(), Outcome: evidence.OutcomeInfo, Summary: summary, Data: data})
	if err != nil {
		return nil, err
	}
	a.EvidenceIndex = idx
	if _, err := r.db.ExecContext(ctx, `INSERT INTO scope_approvals (workload, digest, approver, caller, ticket, reason, approved_ns, development, evidence_index)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.GetWorkload(), a.GetDigest(), a.GetApprover(), a.GetCaller(), a.GetTicket(), a.GetReason(),
		now.UnixNano(), a.GetDevelopment(), idx); err != nil {
		return nil, fmt.Errorf("record approval: %w", err)
	}
	if err := r.recordDeciders(ctx, idx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// ApproveDevelopment approves each manifest's digest as a development
// approval, loudly named, unless it is already the workload's approved
// digest. `secureaudit up` and `scan` run the orchestrator this way.
func (r *Registry) ApproveDevelopment(ctx context.Context, caller string) error {
	names := make([]string, 0, len(r.manifests))
	for w := range r.manifests {
		names = append(names, w)
	}
	sort.Strings(names)
	for _, w := range names {
		if !approvable(w) {
			continue
		}
		cur, err := r.latest(ctx, w)
		if err != nil {
			return err
		}
		if cur != nil && cur.GetDigest() == r.manifests[w].Digest() {
			continue
		}
		if _, err := r.Approve(ctx, &secureauditv1.ScopeApproval{Workload: w, Digest: r.manifests[w].Digest(), Approver: DevelopmentApprover,
			Caller: caller, Ticket: DevelopmentTicket, Reason: "bundled manifest approved automatically at start with -approve-bundled-scopes", Development: true}); err != nil {
			return err
		}
		r.log.Warn("DEVELOPMENT scope approval recorded; not for production", "workload", w, "digest", r.manifests[w].Digest())
	}
	return nil
}

// approvable says whether a workload's scope needs approval: the agents.
func approvable(w string) bool {
	switch w {
	case "rbac-agent", "entra-agent", "risk-agent", "report-agent":
		return true
	}
	return false
}

// latest returns the workload's latest approval, or nil.
func (r *Registry) latest(ctx context.Context, workload string) (*secureauditv1.ScopeApproval, error) {
	var a secureauditv1.ScopeApproval
	var ns int64
	err := r.db.QueryRowContext(ctx, `SELECT workload, digest, approver, caller, ticket, reason, approved_ns, development, evidence_index
		FROM scope_approvals WHERE workload = ? ORDER BY id DESC LIMIT 1`, workload).
		Scan(&a.Workload, &a.Digest, &a.Approver, &a.Caller, &a.Ticket, &a.Reason, &ns, &a.Development, &a.EvidenceIndex)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read approval of %s: %w", workload, err)
	}
	a.ApprovedAt = timestamppb.New(time.Unix(0, ns).UTC())
	if err := r.loadDeciders(ctx, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Check asks every configured agent for its presented digest and compares it
// with the workload's latest approval. A change of state is appended to the
// evidence log: a quarantine as an alert, an approval in force as a pass.
func (r *Registry) Check(ctx context.Context) ([]*secureauditv1.ScopeStatus, error) {
	var out []*secureauditv1.ScopeStatus
	for _, ag := range r.agents {
		st, err := r.status(ctx, ag.Workload, ag.Conn)
		if err != nil {
			return nil, err
		}
		r.noteChange(ctx, st)
		out = append(out, st)
	}
	return out, nil
}

// status asks one agent for its presented digest over conn and compares it
// with the workload's latest approval; its credential check and refusals
// are noted as Check notes them.
func (r *Registry) status(ctx context.Context, workload string, conn grpc.ClientConnInterface) (*secureauditv1.ScopeStatus, error) {
	st := &secureauditv1.ScopeStatus{Workload: workload, CheckedAt: timestamppb.New(r.now().UTC())}
	approval, err := r.latest(ctx, workload)
	if err != nil {
		return nil, err
	}
	st.Approval = approval
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	var md metadata.MD
	_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	cancel()
	presented, ok := rpc.ScopeFromHeader(md)
	switch {
	case err != nil && !ok:
		st.State = secureauditv1.ScopeState_SCOPE_STATE_UNREACHABLE
		st.Reason = "did not answer the health check: " + err.Error()
	case !ok:
		st.State = secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED
		st.Reason = "presented no scope manifest digest"
	case presented.Name != workload:
		st.State = secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED
		st.Reason = fmt.Sprintf("presented the manifest of %q", presented.Name)
	case approval == nil:
		st.State = secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED
		st.Reason = fmt.Sprintf("scope manifest %s has never been approved (secureaudit scope approve %s --digest %s --ticket ...)", presented.Digest, workload, presented.Digest)
	case approval.GetDigest() != presented.Digest:
		st.State = secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED
		st.Reason = fmt.Sprintf("scope manifest changed: it presents %s, but the approved digest is %s (approved by %s, ticket %s)", presented.Digest, approval.GetDigest(), approval.GetApprover(), approval.GetTicket())
	default:
		st.State = secureauditv1.ScopeState_SCOPE_STATE_APPROVED
	}
	if ok {
		st.PresentedDigest, st.PresentedVersion = presented.Digest, presented.Version
		st.CredentialOutcome, st.CredentialSummary = credential(presented.Credential)
	}
	r.noteCredential(ctx, st, presented.Credential)
	r.noteRefusals(ctx, workload, presented.Refusals)
	return st, nil
}

// CheckAgent checks an agent the orchestrator dials for one audit only (a
// registered cluster's rbac-agent) exactly as Admit checks the configured
// ones: it must present the workload's approved scope manifest (and, with
// -refuse-on-credential-violation, no credential violation), or the audit
// is refused (SOC 2 CC5.2). where names the agent ("cluster aks-prod's
// rbac-agent at host:port") in the evidence and the error.
func (r *Registry) CheckAgent(ctx context.Context, workload, where string, conn grpc.ClientConnInterface) error {
	st, err := r.status(ctx, workload, conn)
	if err != nil {
		return err
	}
	if st.GetState() != secureauditv1.ScopeState_SCOPE_STATE_APPROVED {
		st.Reason = where + ": " + st.GetReason()
	}
	r.noteChangeAs(ctx, workload+" "+where, st)
	switch {
	case st.GetState() != secureauditv1.ScopeState_SCOPE_STATE_APPROVED:
		return &QuarantineError{Statuses: []*secureauditv1.ScopeStatus{st}}
	case r.refuseCredential && st.GetCredentialOutcome() == "violation":
		return &CredentialError{Statuses: []*secureauditv1.ScopeStatus{st}}
	}
	return nil
}

// noteChange appends evidence when an agent's state or digest changes.
func (r *Registry) noteChange(ctx context.Context, st *secureauditv1.ScopeStatus) {
	r.noteChangeAs(ctx, st.GetWorkload(), st)
}

// noteChangeAs is noteChange with the agent's own key (the workload, or
// the workload and where a registered cluster's agent runs).
func (r *Registry) noteChangeAs(ctx context.Context, agent string, st *secureauditv1.ScopeStatus) {
	key := st.GetState().String() + " " + st.GetPresentedDigest()
	r.mu.Lock()
	prev, seen := r.state[agent]
	r.state[agent] = key
	r.mu.Unlock()
	if seen && prev == key {
		return
	}
	var e evidence.Entry
	data, _ := json.Marshal(map[string]any{"workload": st.GetWorkload(), "state": st.GetState().String(),
		"presentedDigest": st.GetPresentedDigest(), "approvedDigest": st.GetApproval().GetDigest(), "reason": st.GetReason()})
	switch st.GetState() {
	case secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED:
		e = evidence.Entry{Kind: evidence.KindAlert, Control: "scope", Outcome: evidence.OutcomeFail,
			Summary: fmt.Sprintf("%s quarantined: %s", st.GetWorkload(), st.GetReason())}
		r.log.Error("agent quarantined", "workload", st.GetWorkload(), "reason", st.GetReason())
	case secureauditv1.ScopeState_SCOPE_STATE_APPROVED:
		e = evidence.Entry{Kind: evidence.KindControlResult, Control: "scope", Outcome: evidence.OutcomePass,
			Summary: fmt.Sprintf("%s presents its approved scope manifest %s", st.GetWorkload(), st.GetPresentedDigest())}
	default:
		return
	}
	e.Criteria, e.Subject, e.Data = Criteria, st.GetWorkload(), data
	if _, err := r.rec.Append(ctx, e); err != nil {
		r.log.Error("append scope evidence", "error", err.Error())
	}
}

// credential reads the presented credential check.
func credential(raw string) (outcome, summary string) {
	if raw == "" {
		return "", ""
	}
	var c struct {
		Outcome string `json:"outcome"`
		Summary string `json:"summary"`
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return "error", "the agent presented an unreadable credential check"
	}
	return truncate(c.Outcome, 32), truncate(c.Summary, 4096)
}

func truncate(s string, n int) string {
	r := []rune(strings.ToValidUTF8(s, "?"))
	if len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return string(r)
}

// noteCredential appends the agent's credential check to the evidence log
// when it changes: a violation as an alert.
func (r *Registry) noteCredential(ctx context.Context, st *secureauditv1.ScopeStatus, raw string) {
	if st.GetCredentialOutcome() == "" {
		return
	}
	key := "credential " + st.GetWorkload()
	r.mu.Lock()
	prev, seen := r.state[key]
	r.state[key] = raw
	r.mu.Unlock()
	if seen && prev == raw {
		return
	}
	e := evidence.Entry{Kind: evidence.KindControlResult, Control: "credential", Criteria: []string{"CC6.2", "CC6.1"}, Subject: st.GetWorkload(),
		Summary: st.GetWorkload() + ": " + st.GetCredentialSummary()}
	if json.Valid([]byte(raw)) {
		e.Data = json.RawMessage(raw)
	}
	switch st.GetCredentialOutcome() {
	case "pass", "not-applicable":
		e.Outcome = evidence.OutcomePass
	case "violation":
		e.Kind, e.Outcome = evidence.KindAlert, evidence.OutcomeFail
		r.log.Error("credential violation", "workload", st.GetWorkload(), "summary", st.GetCredentialSummary())
	default:
		e.Outcome = evidence.OutcomeFail
	}
	if _, err := r.rec.Append(ctx, e); err != nil {
		r.log.Error("append credential evidence", "error", err.Error())
	}
}

// QuarantineError says which agents are quarantined and why.
type QuarantineError struct {
	Statuses []*secureauditv1.ScopeStatus
}

func (e *QuarantineError) Error() string {
	var parts []string
	for _, s := range e.Statuses {
		parts = append(parts, s.GetWorkload()+" is quarantined: "+s.GetReason())
	}
	return "the orchestrator refuses to use a quarantined agent (SOC 2 CC5.2): " + strings.Join(parts, "; ")
}

// CredentialError says which agents hold a credential broader than declared.
type CredentialError struct {
	Statuses []*secureauditv1.ScopeStatus
}

func (e *CredentialError) Error() string {
	var parts []string
	for _, s := range e.Statuses {
		parts = append(parts, s.GetWorkload()+": "+s.GetCredentialSummary())
	}
	return "the orchestrator refuses audits while a credential violation stands (SOC 2 CC6.2; -refuse-on-credential-violation): " + strings.Join(parts, "; ")
}

// WithRefuseOnCredentialViolation makes Admit refuse audits while an agent
// presents a credential violation.
func WithRefuseOnCredentialViolation(refuse bool) Option {
	return func(r *Registry) { r.refuseCredential = refuse }
}

// Admit refuses an audit while any configured agent is quarantined.
func (r *Registry) Admit(ctx context.Context) error {
	statuses, err := r.Check(ctx)
	if err != nil {
		return err
	}
	var q []*secureauditv1.ScopeStatus
	for _, s := range statuses {
		if s.GetState() == secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED {
			q = append(q, s)
		}
	}
	if len(q) > 0 {
		return &QuarantineError{Statuses: q}
	}
	if r.refuseCredential {
		var bad []*secureauditv1.ScopeStatus
		for _, s := range statuses {
			if s.GetCredentialOutcome() == "violation" {
				bad = append(bad, s)
			}
		}
		if len(bad) > 0 {
			return &CredentialError{Statuses: bad}
		}
	}
	return nil
}
