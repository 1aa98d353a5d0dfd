// Package assess serves RiskService: it receives an assessment's header,
// snapshot chunks and directory chunks, runs the deterministic rule
// catalogue over the assembled snapshot and streams the findings back in
// bounded batches, closed by a summary.
package assess

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// ProviderNone is the deterministic reasoning provider: no model is called
// and findings carry only the catalogue's text. It is the only provider.
const ProviderNone = "none"

// BatchSize is the most findings one FindingBatch carries.
const BatchSize = 500

// Log attribute keys.
const (
	keyFindings = "findings"
	keyChunks   = "snapshot_chunks"
)

// CheckProvider returns an error unless name is a reasoning provider this
// build supports.
func CheckProvider(name string) error {
	if name != ProviderNone {
		return fmt.Errorf("reasoning provider %q is not supported: only %q is available in this build", name, ProviderNone)
	}
	return nil
}

// Server implements secureauditv1.RiskServiceServer.
type Server struct {
	secureauditv1.UnimplementedRiskServiceServer
	log *slog.Logger
}

// NewServer returns a RiskService server that logs to log.
func NewServer(log *slog.Logger) *Server {
	return &Server{log: log}
}

// errInput marks a caller error; its message is returned as InvalidArgument.
var errInput = snapshot.ErrInput

// Assess implements RiskService.Assess.
func (s *Server) Assess(stream secureauditv1.RiskService_AssessServer) error {
	err := s.assess(stream)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errInput):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err // the stream's own status (cancelled, deadline, transport)
	}
	s.log.ErrorContext(stream.Context(), "assess failed", telemetry.KeyError, err.Error())
	return status.Error(codes.Internal, "internal")
}

func (s *Server) assess(stream secureauditv1.RiskService_AssessServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: empty stream: the first message must be the header", errInput)
	}
	if err != nil {
		return err
	}
	header := first.GetHeader()
	if header == nil {
		return fmt.Errorf("%w: the first message must be the header, got %s", errInput, partName(first))
	}
	ctx := stream.Context()
	log := s.log.With(telemetry.KeyAuditID, header.GetAuditId())
	asm := snapshot.NewAssembler()
	var dir []*secureauditv1.DirectoryChunk
	chunks := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch p := req.GetPart().(type) {
		case *secureauditv1.AssessRequest_Header:
			return fmt.Errorf("%w: a second header arrived; the header must come once, first", errInput)
		case *secureauditv1.AssessRequest_Snapshot:
			chunks++
			if err := asm.AddSnapshot(p.Snapshot); err != nil {
				return err
			}
		case *secureauditv1.AssessRequest_Directory:
			asm.AddDirectory(p.Directory)
			dir = append(dir, p.Directory)
		default:
			return fmt.Errorf("%w: message without a part", errInput)
		}
	}
	snap, err := asm.Snapshot()
	if err != nil {
		return err
	}
	findings := rules.Evaluate(snap)
	findings = append(findings, identity.Evaluate(snap, dir, findings, identity.Config{})...)
	rules.Sort(findings)
	for start := 0; start < len(findings); start += BatchSize {
		end := min(start+BatchSize, len(findings))
		resp := &secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Findings{
			Findings: &secureauditv1.FindingBatch{Findings: findings[start:end]},
		}}
		if err := stream.Send(resp); err != nil {
			return fmt.Errorf("send findings: %w", err)
		}
	}
	summary := &secureauditv1.AssessSummary{
		FindingCount:      uint32(len(findings)),
		CatalogueVersion:  rules.CatalogueVersion,
		ReasoningProvider: ProviderNone,
		Counts:            asm.Counts(),
	}
	if err := stream.Send(&secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Summary{Summary: summary}}); err != nil {
		return fmt.Errorf("send summary: %w", err)
	}
	log.InfoContext(ctx, "assessed", keyChunks, chunks, keyFindings, len(findings))
	return nil
}

func partName(r *secureauditv1.AssessRequest) string {
	switch r.GetPart().(type) {
	case *secureauditv1.AssessRequest_Snapshot:
		return "a snapshot chunk"
	case *secureauditv1.AssessRequest_Directory:
		return "a directory chunk"
	}
	return "a message without a part"
}
