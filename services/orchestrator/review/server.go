package review

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/people"
)

// Server implements ReviewService over a Registry.
type Server struct {
	secureauditv1.UnimplementedReviewServiceServer
	reg *Registry
	log *slog.Logger
}

// NewServer returns the ReviewService.
func NewServer(reg *Registry, log *slog.Logger) *Server { return &Server{reg: reg, log: log} }

// DecideReview records one person's decision on one review item.
func (s *Server) DecideReview(ctx context.Context, req *secureauditv1.DecideReviewRequest) (*secureauditv1.DecideReviewResponse, error) {
	d, v, err := s.reg.Decide(ctx, req)
	if err != nil {
		return nil, s.refusal(ctx, "decide review item", err)
	}
	return &secureauditv1.DecideReviewResponse{Decision: d, Revocation: v}, nil
}

// ImportReview records the decisions of a filled-in access review CSV.
func (s *Server) ImportReview(ctx context.Context, req *secureauditv1.ImportReviewRequest) (*secureauditv1.ImportReviewResponse, error) {
	out, err := s.reg.Import(ctx, req.GetAuditId(), req.GetCsv(), req.GetIdToken())
	if err != nil {
		return nil, s.refusal(ctx, "import review", err)
	}
	return out, nil
}

// GetReviewStatus returns a campaign's state.
func (s *Server) GetReviewStatus(ctx context.Context, req *secureauditv1.GetReviewStatusRequest) (*secureauditv1.GetReviewStatusResponse, error) {
	out, err := s.reg.Status(ctx, req.GetAuditId())
	if err != nil {
		return nil, s.refusal(ctx, "review status", err)
	}
	return out, nil
}

// refusal translates errors into status codes as the AcceptanceService
// does: a refused token is Unauthenticated, separation of duties
// PermissionDenied, an unknown item or audit NotFound, a refused row or
// decision InvalidArgument, no issuer or no audit FailedPrecondition.
func (s *Server) refusal(ctx context.Context, what string, err error) error {
	var (
		refusal     *people.Refusal
		own         *OwnAccessError
		unreachable *people.UnreachableError
		notFound    *NotFoundError
		invalid     *InvalidError
		row         *RowError
	)
	switch {
	case errors.As(err, &refusal):
		s.log.WarnContext(ctx, what+": ID token refused", "reason", refusal.Reason)
		return status.Error(codes.Unauthenticated, refusal.Error())
	case errors.As(err, &own):
		s.log.WarnContext(ctx, what+": separation of duties", "error", err.Error())
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.As(err, &row), errors.As(err, &invalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &notFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrNoIssuer), errors.Is(err, ErrNoAudit):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &unreachable):
		s.log.ErrorContext(ctx, what, "error", err.Error())
		return status.Error(codes.Unavailable, err.Error())
	}
	s.log.ErrorContext(ctx, what, "error", err.Error())
	return status.Error(codes.Internal, "internal")
}
