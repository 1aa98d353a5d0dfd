package approval

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/services/orchestrator/people"
)

// Server implements ScopeService over a Registry.
type Server struct {
	secureauditv1.UnimplementedScopeServiceServer
	reg *Registry
	log *slog.Logger
}

// NewServer returns the ScopeService.
func NewServer(reg *Registry, log *slog.Logger) *Server { return &Server{reg: reg, log: log} }

func (s *Server) internal(ctx context.Context, what string, err error) error {
	s.log.ErrorContext(ctx, what, "error", err.Error())
	return status.Error(codes.Internal, "internal")
}

// ApproveScope records an approval by the person the request's ID token
// names (or, on a development orchestrator, a typed name).
func (s *Server) ApproveScope(ctx context.Context, req *secureauditv1.ApproveScopeRequest) (*secureauditv1.ApproveScopeResponse, error) {
	caller, _ := identity.Caller(ctx)
	a, err := s.reg.Decide(ctx, &secureauditv1.ScopeApproval{Workload: req.GetWorkload(), Digest: req.GetDigest(), Approver: req.GetApprover(),
		Caller: caller.String(), Ticket: req.GetTicket(), Reason: req.GetReason()}, req.GetIdToken())
	if err != nil {
		return nil, s.decision(ctx, "approve scope", err)
	}
	return &secureauditv1.ApproveScopeResponse{Approval: a}, nil
}

// RequestScope records a person's request for an approval.
func (s *Server) RequestScope(ctx context.Context, req *secureauditv1.RequestScopeRequest) (*secureauditv1.RequestScopeResponse, error) {
	resp, err := s.reg.Request(ctx, req.GetWorkload(), req.GetDigest(), req.GetTicket(), req.GetReason(), req.GetIdToken())
	if err != nil {
		return nil, s.decision(ctx, "request scope", err)
	}
	return resp, nil
}

// decision translates the errors of a decision into status codes: a refused
// token is Unauthenticated, separation of duties PermissionDenied, a
// missing issuer, typed name or request FailedPrecondition, an issuer that
// cannot be reached Unavailable.
func (s *Server) decision(ctx context.Context, what string, err error) error {
	var refusal *people.Refusal
	var duties *people.DutiesError
	var noRequest *NoRequestError
	var unreachable *people.UnreachableError
	switch {
	case errors.As(err, &refusal):
		s.log.WarnContext(ctx, what+": ID token refused", "reason", refusal.Reason)
		return status.Error(codes.Unauthenticated, refusal.Error())
	case errors.As(err, &duties):
		s.log.WarnContext(ctx, what+": separation of duties", "error", err.Error())
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.As(err, &noRequest), errors.Is(err, ErrNoIssuer), errors.Is(err, ErrTypedName):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &unreachable):
		s.log.ErrorContext(ctx, what, "error", err.Error())
		return status.Error(codes.Unavailable, err.Error())
	}
	return s.internal(ctx, what, err)
}

// ListScopes checks every agent.
func (s *Server) ListScopes(ctx context.Context, _ *secureauditv1.ListScopesRequest) (*secureauditv1.ListScopesResponse, error) {
	st, err := s.reg.Check(ctx)
	if err != nil {
		return nil, s.internal(ctx, "list scopes", err)
	}
	return &secureauditv1.ListScopesResponse{Scopes: st}, nil
}

// ReviewScopes returns the review report.
func (s *Server) ReviewScopes(ctx context.Context, req *secureauditv1.ReviewScopesRequest) (*secureauditv1.ReviewScopesResponse, error) {
	rev, md, idx, err := s.reg.ReviewAs(ctx, req.GetIdToken(), req.GetReviewer())
	if err != nil {
		return nil, s.decision(ctx, "review scopes", err)
	}
	resp := &secureauditv1.ReviewScopesResponse{Markdown: md, Deviations: uint32(rev.Deviations), EvidenceIndex: idx}
	if !rev.Since.IsZero() {
		resp.Since = timestamppb.New(rev.Since)
	}
	return resp, nil
}
