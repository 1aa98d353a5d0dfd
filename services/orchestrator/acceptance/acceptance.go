// Package acceptance records risk acceptances (issue 15): a finding of the
// latest audit that one person asks to accept, with a reason, a ticket and
// an expiry, and another person approves (separation of duties), each
// named by a verified OpenID Connect ID token. When an audit's findings are
// assembled, Apply moves the findings an approved acceptance covers out of
// the main list, and brings them back flagged when the acceptance expired
// or the grant is no longer the one accepted. Each request, approval and
// expiry is an entry of the evidence log (SOC 2 CC5.2, CC6.3).
package acceptance

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/storage"
)

// Criteria are the SOC 2 criteria acceptance evidence supports.
var Criteria = []string{"CC5.2", "CC6.3"}

// Control names acceptance entries in the evidence log.
const Control = "risk-acceptance"

// DefaultExpiringWithin is how far ahead the report lists expiring
// acceptances.
const DefaultExpiringWithin = 14 * 24 * time.Hour

// Recorder appends to the evidence log.
type Recorder interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
}

// Verifier verifies a person's ID token (people.Verifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (*secureauditv1.Decider, error)
}

// Audits is where the latest audit's findings come from (store.Store).
type Audits interface {
	ListAudits(ctx context.Context, limit int, pageToken string) ([]*secureauditv1.Audit, string, error)
	Findings(ctx context.Context, auditID string) ([]*secureauditv1.Finding, error)
}

// Errors a request or approval is refused with; the server maps them.
var (
	ErrNoIssuer = errors.New("this orchestrator has no OpenID Connect issuer configured (-oidc-issuer and -oidc-audience): risk acceptances need verified people")
	ErrNoAudit  = errors.New("no audit has succeeded yet: accept a finding of an audit")
)

// NotFoundError is a request or approval naming nothing there.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What }

// InvalidError is a request that cannot be carried out as given.
type InvalidError struct{ What string }

func (e *InvalidError) Error() string { return e.What }

// Registry records and applies acceptances.
type Registry struct {
	db     *storage.DB
	rec    Recorder
	audits Audits
	people Verifier
	log    *slog.Logger
	now    func() time.Time
	within time.Duration
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// ExpiringWithin sets how far ahead expiring acceptances are listed.
func ExpiringWithin(d time.Duration) Option { return func(r *Registry) { r.within = d } }

// New returns a registry; v may be nil (no issuer: requests are refused).
func New(db *storage.DB, rec Recorder, audits Audits, v Verifier, log *slog.Logger, opts ...Option) *Registry {
	r := &Registry{db: db, rec: rec, audits: audits, people: v, log: log, now: time.Now, within: DefaultExpiringWithin}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *Registry) person(ctx context.Context, idToken string) (*secureauditv1.Decider, error) {
	if r.people == nil || isNilVerifier(r.people) {
		return nil, ErrNoIssuer
	}
	return r.people.Verify(ctx, idToken)
}

func isNilVerifier(v Verifier) bool {
	p, ok := v.(*people.Verifier)
	return ok && p == nil
}

// SubjectString names a subject as --subject takes it: KIND:NAME, or
// ServiceAccount:NAMESPACE/NAME.
func SubjectString(s *secureauditv1.SubjectRef) string {
	kind := map[secureauditv1.SubjectKind]string{secureauditv1.SubjectKind_SUBJECT_KIND_USER: "User", secureauditv1.SubjectKind_SUBJECT_KIND_GROUP: "Group", secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT: "ServiceAccount"}[s.GetKind()]
	if s.GetNamespace() != "" {
		return kind + ":" + s.GetNamespace() + "/" + s.GetName()
	}
	return kind + ":" + s.GetName()
}

// BindingString names a binding as --binding takes it: NAME, or
// NAMESPACE/NAME for a RoleBinding.
func BindingString(b *secureauditv1.BindingRef) string {
	if b == nil {
		return ""
	}
	if b.GetNamespace() != "" {
		return b.GetNamespace() + "/" + b.GetName()
	}
	return b.GetName()
}

func roleString(r *secureauditv1.FindingRole) string {
	if r == nil {
		return ""
	}
	kind := strings.TrimPrefix(r.GetKind().String(), "ROLE_KIND_")
	if r.GetNamespace() != "" {
		return kind + " " + r.GetNamespace() + "/" + r.GetName()
	}
	return kind + " " + r.GetName()
}

// grantRules are what a finding's grant holds in one audit: each rule hit
// of the same grant (by grant_key) with a fingerprint of the policy rules
// it matched, and the rules folded into them, sorted.
func grantRules(f *secureauditv1.Finding, all []*secureauditv1.Finding) []string {
	set := map[string]bool{}
	add := func(g *secureauditv1.Finding) {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&secureauditv1.Finding{MatchedRules: g.GetMatchedRules()})
		sum := sha256.Sum256(b)
		set[g.GetRuleId()+" "+hex.EncodeToString(sum[:8])] = true
		for _, h := range g.GetFolded() {
			set[h.GetRuleId()+" (folded)"] = true
		}
	}
	add(f)
	if f.GetGrantKey() != "" {
		for _, g := range all {
			if g.GetGrantKey() == f.GetGrantKey() {
				add(g)
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// latest returns the newest succeeded audit's cluster and findings.
func (r *Registry) latest(ctx context.Context) (string, []*secureauditv1.Finding, error) {
	tok := ""
	for range 20 {
		page, next, err := r.audits.ListAudits(ctx, 50, tok)
		if err != nil {
			return "", nil, fmt.Errorf("list audits: %w", err)
		}
		for _, a := range page {
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				fs, err := r.audits.Findings(ctx, a.GetId())
				if err != nil {
					return "", nil, fmt.Errorf("findings of audit %s: %w", a.GetId(), err)
				}
				return a.GetCluster(), fs, nil
			}
		}
		if next == "" {
			break
		}
		tok = next
	}
	return "", nil, ErrNoAudit
}

// find returns the finding a request names among the latest audit's.
func find(req *secureauditv1.RequestAcceptanceRequest, fs []*secureauditv1.Finding) (*secureauditv1.Finding, error) {
	var hits []*secureauditv1.Finding
	for _, f := range fs {
		switch {
		case req.GetFindingId() != "":
			if f.GetId() == req.GetFindingId() {
				hits = append(hits, f)
			}
		case f.GetRuleId() == req.GetRuleId() && SubjectString(f.GetSubject()) == req.GetSubject() &&
			(req.GetBinding() == "" || BindingString(f.GetBinding()) == req.GetBinding()):
			hits = append(hits, f)
		}
	}
	name := req.GetFindingId()
	if name == "" {
		name = req.GetRuleId() + " for " + req.GetSubject()
		if req.GetBinding() != "" {
			name += " through " + req.GetBinding()
		}
	}
	switch {
	case len(hits) == 0:
		return nil, &NotFoundError{What: fmt.Sprintf("the latest audit has no finding %s (secureaudit report LATEST lists them with their IDs)", name)}
	case len(hits) > 1:
		var bs []string
		for _, h := range hits {
			bs = append(bs, BindingString(h.GetBinding()))
		}
		return nil, &InvalidError{What: fmt.Sprintf("%d findings are %s, through bindings %s: name one with --binding", len(hits), name, strings.Join(bs, ", "))}
	}
	return hits[0], nil
}

// Request records the request of the person idToken names to accept a
// finding of the latest audit until expires.
func (r *Registry) Request(ctx context.Context, req *secureauditv1.RequestAcceptanceRequest) (*secureauditv1.Acceptance, error) {
	by, err := r.person(ctx, req.GetIdToken())
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	expires := req.GetExpiresAt().AsTime()
	if !expires.After(now) {
		return nil, &InvalidError{What: fmt.Sprintf("--expires %s is not in the future", expires.Format(time.DateOnly))}
	}
	if expires.After(now.AddDate(1, 0, 0)) {
		return nil, &InvalidError{What: fmt.Sprintf("--expires %s is more than a year away: accept a risk for a year at most and renew it", expires.Format(time.DateOnly))}
	}
	cluster, fs, err := r.latest(ctx)
	if err != nil {
		return nil, err
	}
	f, err := find(req, fs)
	if err != nil {
		return nil, err
	}
	a := &secureauditv1.Acceptance{Cluster: cluster, RuleId: f.GetRuleId(), Subject: f.GetSubject(), Binding: f.GetBinding(), Role: f.GetRole(),
		GrantRules: grantRules(f, fs), Reason: req.GetReason(), Ticket: req.GetTicket(), ExpiresAt: timestamppb.New(expires),
		RequestedBy: by, RequestedAt: timestamppb.New(now), FindingId: f.GetId()}
	data, err := json.Marshal(map[string]any{"cluster": cluster, "finding_id": f.GetId(), "rule_id": f.GetRuleId(), "subject": SubjectString(f.GetSubject()),
		"binding": BindingString(f.GetBinding()), "role": roleString(f.GetRole()), "grant_rules": a.GetGrantRules(), "reason": a.GetReason(), "ticket": a.GetTicket(),
		"expires_at": expires.Format(time.RFC3339), "requested_by": personJSON(by)})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	idx, err := r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindApproval, Control: Control, Criteria: Criteria, Subject: f.GetRuleId() + " " + SubjectString(f.GetSubject()), Outcome: evidence.OutcomeInfo,
		Summary: fmt.Sprintf("%s requested the acceptance of %s for %s on %s until %s (ticket %s): %s", people.Display(by), f.GetRuleId(), SubjectString(f.GetSubject()), cluster, expires.Format(time.DateOnly), a.GetTicket(), a.GetReason()), Data: data})
	if err != nil {
		return nil, err
	}
	a.RequestEvidenceIndex = idx
	raw, err := protojson.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode acceptance: %w", err)
	}
	rb, err := protojson.Marshal(by)
	if err != nil {
		return nil, fmt.Errorf("encode requester: %w", err)
	}
	if err := r.db.QueryRowContext(ctx, `INSERT INTO risk_acceptances (cluster, rule_id, acceptance, requested_by, expires_ns, request_evidence_index) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		cluster, f.GetRuleId(), string(raw), string(rb), expires.UnixNano(), idx).Scan(&a.Id); err != nil {
		return nil, fmt.Errorf("record acceptance: %w", err)
	}
	return a, nil
}

const columns = `id, acceptance, approved_by, approved_ns, approval_evidence_index`

func scan(sc interface{ Scan(...any) error }) (*secureauditv1.Acceptance, error) {
	var (
		id, approvedNs, approvalIdx int64
		raw, approved               string
	)
	if err := sc.Scan(&id, &raw, &approved, &approvedNs, &approvalIdx); err != nil {
		return nil, err
	}
	a := &secureauditv1.Acceptance{}
	if err := protojson.Unmarshal([]byte(raw), a); err != nil {
		return nil, fmt.Errorf("decode acceptance %d: %w", id, err)
	}
	a.Id = id
	if approved != "" {
		a.ApprovedBy = &secureauditv1.Decider{}
		if err := protojson.Unmarshal([]byte(approved), a.ApprovedBy); err != nil {
			return nil, fmt.Errorf("decode approver of acceptance %d: %w", id, err)
		}
		a.ApprovedAt = timestamppb.New(time.Unix(0, approvedNs).UTC())
		a.ApprovalEvidenceIndex = approvalIdx
	}
	return a, nil
}

// Get returns one acceptance.
func (r *Registry) Get(ctx context.Context, id int64) (*secureauditv1.Acceptance, error) {
	a, err := scan(r.db.QueryRowContext(ctx, `SELECT `+columns+` FROM risk_acceptances WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{What: fmt.Sprintf("no acceptance %d (secureaudit accept list)", id)}
	}
	if err != nil {
		return nil, fmt.Errorf("read acceptance %d: %w", id, err)
	}
	return a, nil
}

// Approve records the approval of acceptance id by the person idToken
// names, who must not be its requester.
func (r *Registry) Approve(ctx context.Context, id int64, idToken string) (*secureauditv1.Acceptance, error) {
	by, err := r.person(ctx, idToken)
	if err != nil {
		return nil, err
	}
	a, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.GetApprovedBy() != nil {
		return nil, &InvalidError{What: fmt.Sprintf("acceptance %d was approved already, by %s", id, people.Display(a.GetApprovedBy()))}
	}
	if err := people.SeparateDuties(a.GetRequestedBy(), by, "approve"); err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if !a.GetExpiresAt().AsTime().After(now) {
		return nil, &InvalidError{What: fmt.Sprintf("acceptance %d expired at %s before it was approved: request it again", id, a.GetExpiresAt().AsTime().Format(time.RFC3339))}
	}
	data, err := json.Marshal(map[string]any{"acceptance_id": id, "cluster": a.GetCluster(), "finding_id": a.GetFindingId(), "rule_id": a.GetRuleId(), "subject": SubjectString(a.GetSubject()),
		"binding": BindingString(a.GetBinding()), "ticket": a.GetTicket(), "reason": a.GetReason(), "expires_at": a.GetExpiresAt().AsTime().Format(time.RFC3339),
		"requested_by": personJSON(a.GetRequestedBy()), "approved_by": personJSON(by), "request_evidence_index": a.GetRequestEvidenceIndex()})
	if err != nil {
		return nil, fmt.Errorf("encode approval: %w", err)
	}
	idx, err := r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindApproval, Control: Control, Criteria: Criteria, Subject: a.GetRuleId() + " " + SubjectString(a.GetSubject()), Outcome: evidence.OutcomeInfo,
		Summary: fmt.Sprintf("%s approved acceptance %d of %s for %s on %s, requested by %s, until %s (ticket %s)", people.Display(by), id, a.GetRuleId(), SubjectString(a.GetSubject()),
			a.GetCluster(), people.Display(a.GetRequestedBy()), a.GetExpiresAt().AsTime().Format(time.DateOnly), a.GetTicket()), Data: data})
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(by)
	if err != nil {
		return nil, fmt.Errorf("encode approver: %w", err)
	}
	res, err := r.db.ExecContext(ctx, `UPDATE risk_acceptances SET approved_by = ?, approved_ns = ?, approval_evidence_index = ? WHERE id = ? AND approved_by = ''`, string(raw), now.UnixNano(), idx, id)
	if err != nil {
		return nil, fmt.Errorf("record approval of acceptance %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return nil, &InvalidError{What: fmt.Sprintf("acceptance %d was approved meanwhile by someone else", id)}
	}
	a.ApprovedBy, a.ApprovedAt, a.ApprovalEvidenceIndex = by, timestamppb.New(now), idx
	return a, nil
}

// List returns every acceptance, newest first.
func (r *Registry) List(ctx context.Context) ([]*secureauditv1.Acceptance, error) {
	return r.query(ctx, `SELECT `+columns+` FROM risk_acceptances ORDER BY id DESC`)
}

func (r *Registry) query(ctx context.Context, q string, args ...any) ([]*secureauditv1.Acceptance, error) {
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list acceptances: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.Acceptance
	for rows.Next() {
		a, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list acceptances: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Applied is what Apply made of an audit's findings.
type Applied struct {
	// Main are the findings left in the main list (returned ones included).
	Main []*secureauditv1.Finding
	// Accepted are out of the main list.
	Accepted []*secureauditv1.AcceptedFinding
	// Returned are in Main, flagged.
	Returned []*secureauditv1.AcceptedFinding
	// Within is how far ahead expiring acceptances are listed.
	Within time.Duration
}

func sameSubject(a, b *secureauditv1.SubjectRef) bool {
	return a.GetKind() == b.GetKind() && a.GetName() == b.GetName() && a.GetNamespace() == b.GetNamespace()
}

// Apply sorts the main findings of an audit of cluster by the approved
// acceptances of that cluster: an acceptance of the finding's rule and
// subject, unexpired, whose grant is the one accepted (binding, role, the
// rules held: nothing more) takes the finding out of the main list; an
// expired one, or one whose grant changed, leaves it in, flagged. The first
// time an audit finds an acceptance expired, the expiry is an entry of the
// evidence log.
func (r *Registry) Apply(ctx context.Context, cluster string, main []*secureauditv1.Finding) (*Applied, error) {
	now := r.now().UTC()
	all, err := r.query(ctx, `SELECT `+columns+` FROM risk_acceptances WHERE cluster = ? AND approved_by <> '' ORDER BY id DESC`, cluster)
	if err != nil {
		return nil, err
	}
	out := &Applied{Within: r.within}
	if len(all) == 0 {
		out.Main = main
		return out, nil
	}
	for _, a := range all {
		if !a.GetExpiresAt().AsTime().After(now) {
			if err := r.recordExpiry(ctx, a, now); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range main {
		var hit *secureauditv1.Acceptance
		// The newest acceptance of the rule and subject decides; one of
		// the same binding first.
		for _, a := range all {
			if a.GetRuleId() != f.GetRuleId() || !sameSubject(a.GetSubject(), f.GetSubject()) {
				continue
			}
			if hit == nil || (BindingString(hit.GetBinding()) != BindingString(f.GetBinding()) && BindingString(a.GetBinding()) == BindingString(f.GetBinding())) {
				hit = a
			}
		}
		if hit == nil {
			out.Main = append(out.Main, f)
			continue
		}
		af := &secureauditv1.AcceptedFinding{Finding: f, Acceptance: hit, Status: secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED}
		if exp := hit.GetExpiresAt().AsTime(); !exp.After(now) {
			af.Status, af.Detail = secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_EXPIRED, "acceptance expired at "+exp.Format(time.RFC3339)
		} else if changes := changed(hit, f, main); len(changes) > 0 {
			af.Status, af.Detail = secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED, "grant changed since acceptance: "+strings.Join(changes, "; ")
		}
		if af.Status == secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED {
			out.Accepted = append(out.Accepted, af)
		} else {
			out.Main = append(out.Main, f)
			out.Returned = append(out.Returned, af)
		}
	}
	return out, nil
}

// changed says how a finding's grant differs from the one accepted: another
// binding or role, or rule hits the accepted grant did not hold.
func changed(a *secureauditv1.Acceptance, f *secureauditv1.Finding, all []*secureauditv1.Finding) []string {
	var out []string
	if was, is := BindingString(a.GetBinding()), BindingString(f.GetBinding()); was != is {
		out = append(out, fmt.Sprintf("binding %s, was %s", orNone(is), orNone(was)))
	}
	if was, is := roleString(a.GetRole()), roleString(f.GetRole()); was != is {
		out = append(out, fmt.Sprintf("role %s, was %s", orNone(is), orNone(was)))
	}
	held := map[string]bool{}
	for _, g := range a.GetGrantRules() {
		held[g] = true
	}
	var wider []string
	for _, g := range grantRules(f, all) {
		if !held[g] {
			wider = append(wider, g)
		}
	}
	if len(wider) > 0 {
		out = append(out, "the grant now holds "+strings.Join(wider, ", ")+" beyond what was accepted")
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// recordExpiry appends the expiry of an acceptance to the evidence log,
// once.
func (r *Registry) recordExpiry(ctx context.Context, a *secureauditv1.Acceptance, now time.Time) error {
	res, err := r.db.ExecContext(ctx, `UPDATE risk_acceptances SET expiry_recorded = 1 WHERE id = ? AND expiry_recorded = 0`, a.GetId())
	if err != nil {
		return fmt.Errorf("record expiry of acceptance %d: %w", a.GetId(), err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // recorded before, or by another replica
	}
	data, err := json.Marshal(map[string]any{"acceptance_id": a.GetId(), "cluster": a.GetCluster(), "rule_id": a.GetRuleId(), "subject": SubjectString(a.GetSubject()),
		"ticket": a.GetTicket(), "expired_at": a.GetExpiresAt().AsTime().Format(time.RFC3339), "noticed_at": now.Format(time.RFC3339),
		"requested_by": personJSON(a.GetRequestedBy()), "approved_by": personJSON(a.GetApprovedBy())})
	if err != nil {
		return fmt.Errorf("encode expiry: %w", err)
	}
	_, err = r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindApproval, Control: Control, Criteria: Criteria, Subject: a.GetRuleId() + " " + SubjectString(a.GetSubject()), Outcome: evidence.OutcomeInfo,
		Summary: fmt.Sprintf("acceptance %d of %s for %s on %s (ticket %s, requested by %s, approved by %s) expired at %s: the finding is reported again", a.GetId(), a.GetRuleId(),
			SubjectString(a.GetSubject()), a.GetCluster(), a.GetTicket(), people.Display(a.GetRequestedBy()), people.Display(a.GetApprovedBy()), a.GetExpiresAt().AsTime().Format(time.RFC3339)), Data: data})
	return err
}

func personJSON(d *secureauditv1.Decider) map[string]string {
	if d == nil {
		return nil
	}
	return map[string]string{"issuer": d.GetIssuer(), "sub": d.GetSubject(), "oid": d.GetObjectId(), "name": d.GetName(), "email": d.GetEmail()}
}
