package evidence

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// exportChunk bounds each ExportEvidence message.
const exportChunk = 1 << 20

// Server implements EvidenceService over a Log.
type Server struct {
	secureauditv1.UnimplementedEvidenceServiceServer
	log    *Log
	logger *slog.Logger
}

// NewServer returns the EvidenceService.
func NewServer(l *Log, logger *slog.Logger) *Server {
	return &Server{log: l, logger: logger}
}

// ExportEvidence streams a signed bundle of the requested window.
func (s *Server) ExportEvidence(req *secureauditv1.ExportEvidenceRequest, stream grpc.ServerStreamingServer[secureauditv1.ExportEvidenceResponse]) error {
	ctx := stream.Context()
	var from, to time.Time
	if req.GetFrom() != nil {
		from = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		to = req.GetTo().AsTime()
	}
	b, err := s.log.Export(ctx, from, to)
	if err != nil {
		s.logger.ErrorContext(ctx, "export evidence", "error", err.Error())
		return status.Error(codes.Internal, "internal")
	}
	data, err := json.MarshalIndent(b, "", " ")
	if err != nil {
		s.logger.ErrorContext(ctx, "encode evidence bundle", "error", err.Error())
		return status.Error(codes.Internal, "internal")
	}
	for len(data) > 0 {
		n := min(len(data), exportChunk)
		if err := stream.Send(&secureauditv1.ExportEvidenceResponse{Chunk: data[:n]}); err != nil {
			return fmt.Errorf("send evidence: %w", err)
		}
		data = data[n:]
	}
	return nil
}
