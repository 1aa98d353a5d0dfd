package approval

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
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

// ApproveScope records an approval.
func (s *Server) ApproveScope(ctx context.Context, req *secureauditv1.ApproveScopeRequest) (*secureauditv1.ApproveScopeResponse, error) {
	caller, _ := identity.Caller(ctx)
	a, err := s.reg.Approve(ctx, &secureauditv1.ScopeApproval{Workload: req.GetWorkload(), Digest: req.GetDigest(), Approver: req.GetApprover(),
		Caller: caller.String(), Ticket: req.GetTicket(), Reason: req.GetReason()})
	if err != nil {
		return nil, s.internal(ctx, "approve scope", err)
	}
	return &secureauditv1.ApproveScopeResponse{Approval: a}, nil
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
	rev, md, idx, err := s.reg.Review(ctx, req.GetReviewer())
	if err != nil {
		return nil, s.internal(ctx, "review scopes", err)
	}
	resp := &secureauditv1.ReviewScopesResponse{Markdown: md, Deviations: uint32(rev.Deviations), EvidenceIndex: idx}
	if !rev.Since.IsZero() {
		resp.Since = timestamppb.New(rev.Since)
	}
	return resp, nil
}
