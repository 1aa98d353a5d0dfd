package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/people"
)

// Verifier verifies a person's OpenID Connect ID token (people.Verifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (*secureauditv1.Decider, error)
}

// WithPeople makes approvals and requests carry the person an ID token
// names, verified by v.
func WithPeople(v Verifier) Option { return func(r *Registry) { r.people = v } }

// WithUnverifiedApprovers accepts an approver's name as typed instead of an
// ID token. DEVELOPMENT ONLY: `secureaudit up` and `scan` run this way.
func WithUnverifiedApprovers(allow bool) Option {
	return func(r *Registry) { r.unverified = allow }
}

// Errors a decision is refused with; the server maps them to codes.
var (
	// ErrNoIssuer: an ID token was given, but no issuer is configured.
	ErrNoIssuer = errors.New("this orchestrator has no OpenID Connect issuer configured (-oidc-issuer and -oidc-audience): decisions need a verified person")
	// ErrTypedName: a typed approver or reviewer name on a production
	// orchestrator.
	ErrTypedName = errors.New("a typed approver name is accepted only by a development orchestrator (-dev-unverified-approvers); give the person's ID token (secureaudit ... --id-token-file)")
)

// NoRequestError is an approval nobody asked for.
type NoRequestError struct{ Workload, Digest string }

func (e *NoRequestError) Error() string {
	return fmt.Sprintf("nobody requested the approval of %s %s: another person asks for it first (secureaudit scope request %s --digest %s --ticket ID)", e.Workload, e.Digest, e.Workload, e.Digest)
}

// person returns the person a request or approval names: the verified
// owner of idToken, or nil for a typed development approver.
func (r *Registry) person(ctx context.Context, idToken, typed string) (*secureauditv1.Decider, error) {
	if idToken == "" {
		if typed == "" || !r.unverified {
			return nil, ErrTypedName
		}
		return nil, nil
	}
	if r.people == nil {
		return nil, ErrNoIssuer
	}
	return r.people.Verify(ctx, idToken)
}

// Request records that the person idToken names asks for the approval of a
// workload's digest, and appends it to the evidence log.
func (r *Registry) Request(ctx context.Context, workload, digest, ticket, reason, idToken string) (*secureauditv1.RequestScopeResponse, error) {
	by, err := r.person(ctx, idToken, "")
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	data, err := json.Marshal(map[string]any{"workload": workload, "digest": digest, "ticket": ticket, "reason": reason, "requested_by": personJSON(by)})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	idx, err := r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindApproval, Control: "scope", Criteria: Criteria, Subject: workload, Outcome: evidence.OutcomeInfo,
		Summary: fmt.Sprintf("%s requested approval of scope manifest %s of %s (ticket %s)", people.Display(by), digest, workload, ticket), Data: data})
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(by)
	if err != nil {
		return nil, fmt.Errorf("encode requester: %w", err)
	}
	if _, err := r.db.ExecContext(ctx, `INSERT INTO scope_requests (workload, digest, ticket, reason, requested_by, requested_ns, evidence_index) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		workload, digest, ticket, reason, string(raw), now.UnixNano(), idx); err != nil {
		return nil, fmt.Errorf("record request: %w", err)
	}
	return &secureauditv1.RequestScopeResponse{RequestedBy: by, RequestedAt: timestamppb.New(now), EvidenceIndex: idx}, nil
}

// requester returns who last requested the approval of a workload's digest,
// or nil.
func (r *Registry) requester(ctx context.Context, workload, digest string) (*secureauditv1.Decider, error) {
	var raw string
	err := r.db.QueryRowContext(ctx, `SELECT requested_by FROM scope_requests WHERE workload = ? AND digest = ? ORDER BY id DESC LIMIT 1`, workload, digest).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read request of %s: %w", workload, err)
	}
	var d secureauditv1.Decider
	if err := protojson.Unmarshal([]byte(raw), &d); err != nil {
		return nil, fmt.Errorf("decode requester of %s: %w", workload, err)
	}
	return &d, nil
}

// Decide records an approval made by the person idToken names: someone
// else must have requested it (separation of duties). A typed approver is
// accepted only with WithUnverifiedApprovers, and needs no request.
func (r *Registry) Decide(ctx context.Context, a *secureauditv1.ScopeApproval, idToken string) (*secureauditv1.ScopeApproval, error) {
	by, err := r.person(ctx, idToken, a.GetApprover())
	if err != nil {
		return nil, err
	}
	if by == nil {
		a.Approver = "UNVERIFIED (development): " + a.GetApprover()
		return r.Approve(ctx, a)
	}
	req, err := r.requester(ctx, a.GetWorkload(), a.GetDigest())
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, &NoRequestError{Workload: a.GetWorkload(), Digest: a.GetDigest()}
	}
	if err := people.SeparateDuties(req, by, "approve"); err != nil {
		return nil, err
	}
	a.Approver, a.ApprovedBy, a.RequestedBy = truncate(people.Display(by), 256), by, req
	return r.Approve(ctx, a)
}

// recordDeciders stores the people behind the approval at evidence entry idx.
func (r *Registry) recordDeciders(ctx context.Context, idx int64, a *secureauditv1.ScopeApproval) error {
	if a.GetApprovedBy() == nil {
		return nil
	}
	approved, err := protojson.Marshal(a.GetApprovedBy())
	if err != nil {
		return fmt.Errorf("encode approver: %w", err)
	}
	requested := []byte("{}")
	if a.GetRequestedBy() != nil {
		if requested, err = protojson.Marshal(a.GetRequestedBy()); err != nil {
			return fmt.Errorf("encode requester: %w", err)
		}
	}
	if _, err := r.db.ExecContext(ctx, `INSERT INTO scope_deciders (evidence_index, approved_by, requested_by) VALUES (?, ?, ?)`, idx, string(approved), string(requested)); err != nil {
		return fmt.Errorf("record approver: %w", err)
	}
	return nil
}

// loadDeciders fills in the people behind a stored approval.
func (r *Registry) loadDeciders(ctx context.Context, a *secureauditv1.ScopeApproval) error {
	var approved, requested string
	err := r.db.QueryRowContext(ctx, `SELECT approved_by, requested_by FROM scope_deciders WHERE evidence_index = ?`, a.GetEvidenceIndex()).Scan(&approved, &requested)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read approver of %s: %w", a.GetWorkload(), err)
	}
	a.ApprovedBy = &secureauditv1.Decider{}
	if err := protojson.Unmarshal([]byte(approved), a.ApprovedBy); err != nil {
		return fmt.Errorf("decode approver of %s: %w", a.GetWorkload(), err)
	}
	if requested != "{}" {
		a.RequestedBy = &secureauditv1.Decider{}
		if err := protojson.Unmarshal([]byte(requested), a.RequestedBy); err != nil {
			return fmt.Errorf("decode requester of %s: %w", a.GetWorkload(), err)
		}
	}
	return nil
}

// personJSON is a person as the evidence log records it: who the issuer
// says they are.
func personJSON(d *secureauditv1.Decider) map[string]string {
	if d == nil {
		return nil
	}
	return map[string]string{"issuer": d.GetIssuer(), "sub": d.GetSubject(), "oid": d.GetObjectId(), "name": d.GetName(), "email": d.GetEmail()}
}
