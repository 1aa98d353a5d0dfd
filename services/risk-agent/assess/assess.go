// Package assess serves RiskService: it receives an assessment's header,
// snapshot chunks and directory chunks, runs the deterministic rule
// catalogue over the assembled snapshot and streams the findings back in
// bounded batches, closed by a summary.
package assess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/aks"
	"secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/inject"
	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/reasoning"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/review"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// ProviderNone is the deterministic reasoning provider: no model is called
// and the reasoning is template text.
const ProviderNone = reasoning.ProviderNone

// BatchSize is the most findings one FindingBatch carries.
const BatchSize = 500

// BatchBytes bounds the encoded findings of one batch, well under the RPC
// message limit.
const BatchBytes = 8 << 20

// maxAnomalies is the most anomaly events a summary carries (its contract's
// bound); planted strings beyond it still become findings.
const maxAnomalies = 10000

// Log attribute keys.
const (
	keyFindings  = "findings"
	keyChunks    = "snapshot_chunks"
	keyAnomalies = "anomalies"
)

// Reasoner annotates findings; it never changes them.
type Reasoner interface {
	Provider() string
	Reason(ctx context.Context, in reasoning.Input) reasoning.Result
}

// Server implements secureauditv1.RiskServiceServer.
type Server struct {
	secureauditv1.UnimplementedRiskServiceServer
	log      *slog.Logger
	reasoner Reasoner
	identity identity.Config
}

// Option configures a Server.
type Option func(*Server)

// WithReasoner sets the reasoning step; the default is provider "none".
func WithReasoner(r Reasoner) Option { return func(s *Server) { s.reasoner = r } }

// WithIdentityConfig tunes the identity rules (the stale-account age).
func WithIdentityConfig(cfg identity.Config) Option { return func(s *Server) { s.identity = cfg } }

// NewServer returns a RiskService server that logs to log.
func NewServer(log *slog.Logger, opts ...Option) *Server {
	s := &Server{log: log, reasoner: reasoning.None()}
	for _, o := range opts {
		o(s)
	}
	return s
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
	det := Detect(snap, dir, s.identity)
	findings, detections := det.Findings, det.Injections
	for start := 0; start < len(findings); {
		// A batch holds at most BatchSize findings and BatchBytes of
		// them: findings quoting the rules of a large role are large.
		end, size := start, 0
		for end < len(findings) && end-start < BatchSize {
			n := proto.Size(findings[end])
			if end > start && size+n > BatchBytes {
				break
			}
			size += n
			end++
		}
		batch := findings[start:end]
		start = end
		resp := &secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Findings{
			Findings: &secureauditv1.FindingBatch{Findings: batch},
		}}
		if err := stream.Send(resp); err != nil {
			return fmt.Errorf("send findings: %w", err)
		}
	}
	// Reasoning runs after the findings are sent: its text annotates them
	// and cannot reach back into them.
	result := s.reasoner.Reason(ctx, reasoning.Input{
		AuditID:  header.GetAuditId(),
		Cluster:  snap.Header().GetCluster(),
		Findings: findings,
		Subjects: reasoning.Subjects(snap),
	})
	if err := stream.Send(&secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Reasoning{Reasoning: result.Reasoning}}); err != nil {
		return fmt.Errorf("send reasoning: %w", err)
	}
	anomalies := make([]*secureauditv1.Anomaly, 0, len(detections)+len(result.Anomalies))
	for _, d := range detections {
		anomalies = append(anomalies, d.Anomaly(header.GetAuditId()))
	}
	anomalies = append(anomalies, result.Anomalies...)
	if len(anomalies) > maxAnomalies {
		log.WarnContext(ctx, "anomalies truncated", keyAnomalies, len(anomalies))
		anomalies = anomalies[:maxAnomalies]
	}
	// Every control the registry maps a rule to, with its title: the report
	// states a compliance status for each. The AKS controls only when the
	// audit read an AKS cluster, the only case their rules can run.
	controls := registry.Controls()
	if aks.Cluster(dir) == nil {
		controls = registry.ControlsWithout(registry.AKS)
	}
	summary := &secureauditv1.AssessSummary{
		FindingCount:          uint32(len(findings)),
		CatalogueVersion:      rules.CatalogueVersion,
		ReasoningProvider:     s.reasoner.Provider(),
		Counts:                asm.Counts(),
		ModelCalls:            result.Calls,
		Anomalies:             anomalies,
		TemplateVersion:       reasoning.TemplateVersion,
		PlatformGrants:        det.PlatformGrants,
		Semantics:             det.Semantics,
		ChokePoints:           det.ChokePoints,
		Controls:              controls,
		AccessReview:          det.AccessReview,
		AccessReviewTruncated: det.AccessReviewTruncated,
	}
	if err := stream.Send(&secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Summary{Summary: summary}}); err != nil {
		return fmt.Errorf("send summary: %w", err)
	}
	log.InfoContext(ctx, "assessed", keyChunks, chunks, keyFindings, len(findings))
	return nil
}

// Detection is the deterministic part of an assessment.
type Detection struct {
	// Findings are every rule's findings (RBAC, ENTRA, PATH, INJ), sorted.
	Findings []*secureauditv1.Finding
	// Injections are the injection hits behind the INJ findings.
	Injections []inject.Detection
	// PlatformGrants are the grants recognised as platform-managed, at most
	// maxPlatformGrants.
	PlatformGrants []*secureauditv1.ManagedGrant
	// Semantics is the server version whose authorizer semantics the rules
	// applied, and where it came from.
	Semantics *secureauditv1.AuthorizerSemantics
	// ChokePoints are the bindings whose removal closes the most proven
	// escalation paths.
	ChokePoints []*secureauditv1.ChokePoint
	// AccessReview lists the users and groups that hold access outside the
	// platform-managed grants, for the access review (package review), at
	// most review.MaxSubjects; AccessReviewTruncated says whether more do.
	AccessReview          []*secureauditv1.ReviewSubject
	AccessReviewTruncated bool
}

// maxPlatformGrants bounds AssessSummary.platform_grants, as the contract
// does.
const maxPlatformGrants = 10000

// Detect runs the deterministic detection over a snapshot and the
// directory's chunks: pure, the same input gives the same output.
func Detect(snap *snapshot.Snapshot, dir []*secureauditv1.DirectoryChunk, cfg identity.Config) Detection {
	// A route an Azure deny assignment blocks is no route: every use of
	// the directory below (grants, rules, paths, the access review) reads
	// the role assignments as the deny assignments leave them.
	dir = access.WithoutDenied(dir)
	// Injection hits need nothing of the analysis: the strings are scanned
	// on another core meanwhile (a third of the engine's time at 100,000
	// objects, while the analysis runs on one).
	inspected := make(chan []inject.Detection, 1)
	go func() { inspected <- inject.Inspect(snap, dir) }()
	analysis := rules.Analyze(snap)
	findings := analysis.Findings()
	findings = append(findings, identity.Evaluate(snap, dir, findings, cfg)...)
	// Escalation paths, those starting from an Azure role included.
	escalation := paths.AnalyzeWithAzure(analysis, dir)
	findings = append(findings, escalation.Findings...)
	// Injection hits in cluster or directory strings are security findings
	// in their own right, whatever the reasoning provider.
	detections := <-inspected
	for _, d := range detections {
		findings = append(findings, d.Finding)
	}
	rules.Sort(findings)
	rules.Annotate(snap, findings)
	// The AKS configuration findings are about the cluster, not a grant:
	// each keeps the grant key it was given (its own), so that the report
	// lists each setting as an entry of its own.
	if az := aks.Evaluate(dir); len(az) > 0 {
		findings = append(findings, az...)
		rules.Sort(findings)
	}
	managed := analysis.ManagedGrants()
	// The access review leaves out exactly the platform-managed grants,
	// all of them, and resolves people through the snapshot's directory.
	subjects, truncated := review.Subjects(snap, dir, managed)
	if len(managed) > maxPlatformGrants {
		managed = managed[:maxPlatformGrants]
	}
	return Detection{Findings: findings, Injections: detections, PlatformGrants: managed, Semantics: analysis.Semantics(), ChokePoints: escalation.ChokePoints,
		AccessReview: subjects, AccessReviewTruncated: truncated}
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
