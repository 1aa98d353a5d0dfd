// Package server serves RBACService: it loads the configured snapshot source
// on every Collect call and streams the snapshot in bounded chunks.
package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/services/rbac-agent/collect"
)

// Log attribute keys.
const (
	keyChunks  = "chunks"
	keyObjects = "objects"
	keyCluster = "cluster"
)

// Source loads a snapshot; collect.Files and collect.Live are sources.
type Source interface {
	Load(ctx context.Context) (*collect.Snapshot, error)
}

// Server implements secureauditv1.RBACServiceServer.
type Server struct {
	secureauditv1.UnimplementedRBACServiceServer
	log   *slog.Logger
	src   Source
	limit int
}

// Option configures a Server.
type Option func(*Server)

// WithChunkLimit sets the most objects per chunk (at most, and by default,
// collect.MaxChunkObjects).
func WithChunkLimit(n int) Option {
	return func(s *Server) { s.limit = n }
}

// New returns a server that collects from src.
func New(log *slog.Logger, src Source, opts ...Option) *Server {
	s := &Server{log: log, src: src, limit: collect.MaxChunkObjects}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Collect loads the snapshot now, so that a changed file or cluster is seen,
// and streams it: the header in the first chunk, the trailer in the last.
func (s *Server) Collect(req *secureauditv1.CollectRequest, stream grpc.ServerStreamingServer[secureauditv1.CollectResponse]) error {
	ctx := stream.Context()
	log := s.log.With(telemetry.KeyAuditID, req.GetAuditId())
	start := time.Now()
	snap, err := s.src.Load(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return status.FromContextError(ctxErr).Err()
		}
		// The source is the operator's configuration, not the caller's
		// input: the caller can only retry once it is fixed. The message
		// names the file and object so that the audit record says what to fix.
		log.WarnContext(ctx, "load snapshot", telemetry.KeyError, err.Error())
		return status.Error(codes.FailedPrecondition, "load snapshot: "+err.Error())
	}
	chunks := snap.Chunks(s.limit)
	for _, c := range chunks {
		if err := stream.Send(&secureauditv1.CollectResponse{Chunk: c}); err != nil {
			return err
		}
	}
	c := snap.Counts()
	objects := c.Namespaces + c.Roles + c.ClusterRoles + c.RoleBindings + c.ClusterRoleBindings + c.ServiceAccounts + c.Workloads
	log.InfoContext(ctx, "collected", keyCluster, snap.Header.GetCluster(), keyObjects, objects, keyChunks, len(chunks), telemetry.KeyDuration, time.Since(start))
	return nil
}
