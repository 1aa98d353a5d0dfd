package acceptance

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/people"
)

// Server implements AcceptanceService over a Registry.
type Server struct {
	secureauditv1.UnimplementedAcceptanceServiceServer
	reg *Registry
	log *slog.Logger
}

// NewServer returns the AcceptanceService.
func NewServer(reg *Registry, log *slog.Logger) *Server { return &Server{reg: reg, log: log} }

// RequestAcceptance records a person's request to accept a finding's risk.
func (s *Server) RequestAcceptance(ctx context.Context, req *secureauditv1.RequestAcceptanceRequest) (*secureauditv1.RequestAcceptanceResponse, error) {
	a, err := s.reg.Request(ctx, req)
	if err != nil {
		return nil, s.decision(ctx, "request acceptance", err)
	}
	return &secureauditv1.RequestAcceptanceResponse{Acceptance: a}, nil
}

// ApproveAcceptance records another person's approval of a request.
func (s *Server) ApproveAcceptance(ctx context.Context, req *secureauditv1.ApproveAcceptanceRequest) (*secureauditv1.ApproveAcceptanceResponse, error) {
	a, err := s.reg.Approve(ctx, req.GetId(), req.GetIdToken())
	if err != nil {
		return nil, s.decision(ctx, "approve acceptance", err)
	}
	return &secureauditv1.ApproveAcceptanceResponse{Acceptance: a}, nil
}

// ListAcceptances lists every acceptance.
func (s *Server) ListAcceptances(ctx context.Context, _ *secureauditv1.ListAcceptancesRequest) (*secureauditv1.ListAcceptancesResponse, error) {
	all, err := s.reg.List(ctx)
	if err != nil {
		return nil, s.decision(ctx, "list acceptances", err)
	}
	return &secureauditv1.ListAcceptancesResponse{Acceptances: all}, nil
}

// decision translates errors into status codes as the ScopeService does: a
// refused token is Unauthenticated, separation of duties PermissionDenied,
// nothing to accept NotFound, no issuer or no audit FailedPrecondition.
func (s *Server) decision(ctx context.Context, what string, err error) error {
	var (
		refusal     *people.Refusal
		duties      *people.DutiesError
		unreachable *people.UnreachableError
		notFound    *NotFoundError
		invalid     *InvalidError
	)
	switch {
	case errors.As(err, &refusal):
		s.log.WarnContext(ctx, what+": ID token refused", "reason", refusal.Reason)
		return status.Error(codes.Unauthenticated, refusal.Error())
	case errors.As(err, &duties):
		s.log.WarnContext(ctx, what+": separation of duties", "error", err.Error())
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.As(err, &notFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.As(err, &invalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNoIssuer), errors.Is(err, ErrNoAudit):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &unreachable):
		s.log.ErrorContext(ctx, what, "error", err.Error())
		return status.Error(codes.Unavailable, err.Error())
	}
	s.log.ErrorContext(ctx, what, "error", err.Error())
	return status.Error(codes.Internal, "internal")
}
