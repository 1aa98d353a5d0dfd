package directory

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/telemetry"
)

// Log attribute keys.
const (
	keyPrincipals        = "principals"
	keyUsers             = "users"
	keyGroups            = "groups"
	keyServicePrincipals = "service_principals"
	keyUnresolved        = "unresolved"
	keyChunks            = "chunks"
)

// Server serves EntraService from a Source.
type Server struct {
	secureauditv1.UnimplementedEntraServiceServer
	log *slog.Logger
	src Source
}

// NewServer returns a server that resolves principals through src. A nil src
// means no directory is configured: the server still runs, and Resolve fails
// with FailedPrecondition.
func NewServer(log *slog.Logger, src Source) *Server {
	return &Server{log: log, src: src}
}

// Resolve streams what the directory knows of the requested principals in
// chunks within DirectoryChunk's limits, objects sorted by ID.
func (s *Server) Resolve(req *secureauditv1.ResolveRequest, stream secureauditv1.EntraService_ResolveServer) error {
	ctx := stream.Context()
	if s.src == nil {
		return status.Error(codes.FailedPrecondition, "no directory source configured")
	}
	// The cluster the audit is of, when the source can read any: otherwise
	// the answer presents the cluster it is about, and the orchestrator
	// checks it.
	var res *Result
	var err error
	if cs, ok := s.src.(ClusterSource); ok && req.GetClusterResourceId() != "" {
		res, err = cs.ResolveCluster(ctx, req.GetClusterResourceId(), req.GetPrincipals())
	} else {
		res, err = s.src.Resolve(ctx, req.GetPrincipals())
	}
	if err != nil {
		return s.status(ctx, req, err)
	}
	chunks := Chunks(res)
	for _, c := range chunks {
		if err := stream.Send(&secureauditv1.ResolveResponse{Chunk: c}); err != nil {
			return err
		}
	}
	s.log.InfoContext(ctx, "resolved principals",
		telemetry.KeyAuditID, req.GetAuditId(),
		keyPrincipals, len(req.GetPrincipals()),
		keyUsers, len(res.Users),
		keyGroups, len(res.Groups),
		keyServicePrincipals, len(res.ServicePrincipals),
		keyUnresolved, len(res.Unresolved),
		keyChunks, len(chunks))
	return nil
}

// status translates a Source error into a gRPC status, once, at the edge.
func (s *Server) status(ctx context.Context, req *secureauditv1.ResolveRequest, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	// The request's own AKS resource ID, refused: the caller is told what
	// and why (the ID is the caller's, so echoing it discloses nothing).
	var ce *ClusterError
	if errors.As(err, &ce) {
		s.log.WarnContext(ctx, "resolve principals: cluster refused", telemetry.KeyAuditID, req.GetAuditId(), telemetry.KeyError, ce.Error())
		if ce.Full {
			return status.Error(codes.ResourceExhausted, ce.Error())
		}
		return status.Error(codes.InvalidArgument, ce.Error())
	}
	s.log.ErrorContext(ctx, "resolve principals", telemetry.KeyAuditID, req.GetAuditId(), telemetry.KeyError, err.Error())
	return status.Error(codes.Internal, "internal")
}
