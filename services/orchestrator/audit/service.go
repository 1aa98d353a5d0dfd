package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/services/orchestrator/store"
)

// reportChunk bounds each GetReport message.
const reportChunk = 1 << 20

// defaultPageSize is used when ListAudits asks for 0.
const defaultPageSize = 20

// Service implements the public AuditService.
type Service struct {
	secureauditv1.UnimplementedAuditServiceServer
	runner *Runner
	store  Store
	log    *slog.Logger
	// schedules serves the schedule RPCs; nil until ScheduleWith.
	schedules Schedules
	// renderMu serialises late renders (see renderLate).
	renderMu sync.Mutex
}

// NewService returns the AuditService over a runner and its store.
func NewService(runner *Runner, st Store, log *slog.Logger) *Service {
	return &Service{runner: runner, store: st, log: log}
}

// StartAudit queues an audit.
func (s *Service) StartAudit(ctx context.Context, req *secureauditv1.StartAuditRequest) (*secureauditv1.StartAuditResponse, error) {
	// Refused now rather than failed later: an audit with no rbac-agent to
	// collect from.
	if _, err := s.runner.registration(ctx, req.GetCluster()); errors.Is(err, errNoAgent) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	} else if err != nil {
		return nil, s.internal(ctx, "start audit", err)
	}
	caller, _ := identity.Caller(ctx)
	a := &secureauditv1.Audit{
		Id:      uuid.NewString(),
		Cluster: req.GetCluster(),
		State:   secureauditv1.AuditState_AUDIT_STATE_PENDING,
		// Nanoseconds, not seconds: audits of one cluster started within a
		// second are ordered by when they were asked for (the queue, the
		// fleet view's last audit and its trend), not by their random IDs.
		CreatedAt:     timestamppb.New(s.runner.now().UTC()),
		RequestedBy:   caller.String(),
		SkipDirectory: req.GetSkipDirectory(),
		Formats:       req.GetFormats(),
	}
	if err := s.runner.Enqueue(ctx, a); err != nil {
		if errors.Is(err, errQueueFull) {
			return nil, status.Error(codes.ResourceExhausted, "the audit queue is full; try again later")
		}
		return nil, s.internal(ctx, "start audit", err)
	}
	return &secureauditv1.StartAuditResponse{Audit: s.runner.snapshot(a)}, nil
}

// GetAudit returns one audit.
func (s *Service) GetAudit(ctx context.Context, req *secureauditv1.GetAuditRequest) (*secureauditv1.GetAuditResponse, error) {
	a, err := s.get(ctx, req.GetAuditId())
	if err != nil {
		return nil, err
	}
	return &secureauditv1.GetAuditResponse{Audit: a}, nil
}

// ListAudits pages through audits, newest first.
func (s *Service) ListAudits(ctx context.Context, req *secureauditv1.ListAuditsRequest) (*secureauditv1.ListAuditsResponse, error) {
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	audits, next, err := s.store.ListClusterAudits(ctx, req.GetCluster(), size, req.GetPageToken())
	if errors.Is(err, store.ErrBadPageToken) {
		return nil, status.Error(codes.InvalidArgument, "page_token: not a token from a previous ListAudits")
	}
	if err != nil {
		return nil, s.internal(ctx, "list audits", err)
	}
	return &secureauditv1.ListAuditsResponse{Audits: audits, NextPageToken: next}, nil
}

// CancelAudit cancels a pending or running audit.
func (s *Service) CancelAudit(ctx context.Context, req *secureauditv1.CancelAuditRequest) (*secureauditv1.CancelAuditResponse, error) {
	if _, err := s.get(ctx, req.GetAuditId()); err != nil {
		return nil, err
	}
	ok, err := s.runner.Cancel(ctx, req.GetAuditId())
	if err != nil {
		return nil, s.internal(ctx, "cancel audit", err)
	}
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "audit %s has already finished", req.GetAuditId())
	}
	// A running audit finishes asynchronously; wait briefly for its state.
	for {
		a, err := s.get(ctx, req.GetAuditId())
		if err != nil {
			return nil, err
		}
		if terminal(a.GetState()) {
			return &secureauditv1.CancelAuditResponse{Audit: a}, nil
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.runner.changed(req.GetAuditId()):
		case <-time.After(s.runner.poll): // held by another replica
		}
	}
}

// GetReport streams a finished audit's report.
func (s *Service) GetReport(req *secureauditv1.GetReportRequest, stream grpc.ServerStreamingServer[secureauditv1.GetReportResponse]) error {
	ctx := stream.Context()
	a, err := s.get(ctx, req.GetAuditId())
	if err != nil {
		return err
	}
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		return status.Errorf(codes.FailedPrecondition, "audit %s has no report: it is %s", a.GetId(), a.GetState())
	}
	// The document is read from the store one stored chunk at a time and
	// sent in messages of at most reportChunk bytes.
	send := func(data []byte) error {
		for start := 0; start < len(data) || start == 0; start += reportChunk {
			end := min(start+reportChunk, len(data))
			if err := stream.Send(&secureauditv1.GetReportResponse{Data: data[start:end]}); err != nil {
				return err
			}
			if end == len(data) {
				break
			}
		}
		return nil
	}
	err = s.store.ReadReport(ctx, a.GetId(), req.GetFormat(), send)
	if errors.Is(err, store.ErrNotFound) {
		if err = s.renderLate(ctx, a.GetId(), req.GetFormat()); err == nil {
			err = s.store.ReadReport(ctx, a.GetId(), req.GetFormat(), send)
		}
	}
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return s.internal(ctx, "get report", err)
	}
	return nil
}

// renderLate renders a format the audit did not render when it finished,
// from the findings and report header stored with it, and stores the
// document (chunk by chunk, as it arrives) so that it is rendered once.
// Late renders run one at a time.
func (s *Service) renderLate(ctx context.Context, id string, format secureauditv1.ReportFormat) error {
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	// A request waiting on the lock may find the document rendered.
	if err := s.store.ReadReport(ctx, id, format, func([]byte) error { return errStored }); !errors.Is(err, store.ErrNotFound) {
		if errors.Is(err, errStored) {
			return nil
		}
		return err
	}
	input, err := s.store.ReportInput(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return status.Errorf(codes.NotFound, "audit %s has no %s report (it finished before reports could be rendered on request)", id, format)
	}
	if err != nil {
		return err
	}
	findings, err := s.store.Findings(ctx, id)
	if err != nil {
		return err
	}
	// The store keeps every finding; the audit's own render left the
	// accepted risks out of the main list (they are in the report's
	// Accepted risks), and so does a late one.
	findings = withoutAccepted(findings, input.GetAcceptedRisks())
	var size int
	_, err = stageCall(ctx, s.runner.budgets.Render, "report-agent", "render", "-render-timeout", func(ctx context.Context) (struct{}, error) {
		stored := storeChunks(ctx, s.store, id)
		return struct{}{}, renderEach(ctx, s.runner.agents.Report, input, findings, nil, []secureauditv1.ReportFormat{format}, nil,
			func(f secureauditv1.ReportFormat, seq int, data []byte, last bool) error {
				size += len(data)
				return stored(f, seq, data, last)
			})
	})
	if err != nil {
		if unavailable(err) {
			return status.Errorf(codes.Unavailable, "the %s report of audit %s was not rendered when the audit finished, and the report-agent cannot render it now: %v", format, id, err)
		}
		// Any other failure is ours, not the caller's: %v keeps the
		// report-agent's status from reaching the caller as its own.
		return fmt.Errorf("render %s of audit %s: %v", format, id, err)
	}
	s.log.InfoContext(ctx, "report rendered on request", keyAuditID, id, "format", format.String(), "bytes", size)
	return nil
}

// errStored stops a read that only asks whether a document is stored.
var errStored = errors.New("stored")

// WatchAudit streams the audit's events from the first until it ends.
func (s *Service) WatchAudit(req *secureauditv1.WatchAuditRequest, stream grpc.ServerStreamingServer[secureauditv1.WatchAuditResponse]) error {
	ctx := stream.Context()
	id := req.GetAuditId()
	if _, err := s.get(ctx, id); err != nil {
		return err
	}
	var last uint32
	for {
		// Subscribe before reading so that no event falls between the two.
		changed := s.runner.changed(id)
		events, err := s.store.Events(ctx, id, last)
		if err != nil {
			return s.internal(ctx, "watch audit", err)
		}
		for _, e := range events {
			if err := stream.Send(&secureauditv1.WatchAuditResponse{Event: e}); err != nil {
				return err
			}
			last = e.GetSequence()
		}
		a, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		if terminal(a.GetState()) {
			// The final event is stored before the state is visible; one
			// more read drains anything that arrived meanwhile.
			more, err := s.store.Events(ctx, id, last)
			if err != nil {
				return s.internal(ctx, "watch audit", err)
			}
			for _, e := range more {
				if err := stream.Send(&secureauditv1.WatchAuditResponse{Event: e}); err != nil {
					return err
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-changed:
		case <-time.After(s.runner.poll): // run by another replica
		}
	}
}

func (s *Service) get(ctx context.Context, id string) (*secureauditv1.Audit, error) {
	a, err := s.store.GetAudit(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "audit %s not found", id)
	}
	if err != nil {
		return nil, s.internal(ctx, "get audit", err)
	}
	return a, nil
}

// internal logs an unexpected error once and hides it from the caller.
func (s *Service) internal(ctx context.Context, op string, err error) error {
	s.log.ErrorContext(ctx, op, keyError, err.Error())
	return status.Error(codes.Internal, "internal")
}

func cloneAudit(a *secureauditv1.Audit) *secureauditv1.Audit {
	return proto.Clone(a).(*secureauditv1.Audit)
}

// withoutAccepted returns findings without the accepted risks (the audit's
// own render and a late one both leave them out of the main list);
// platform-managed findings are kept.
func withoutAccepted(findings []*secureauditv1.Finding, accepted []*secureauditv1.AcceptedFinding) []*secureauditv1.Finding {
	if len(accepted) == 0 {
		return findings
	}
	out := map[string]bool{}
	for _, a := range accepted {
		out[a.GetFinding().GetId()] = true
	}
	kept := make([]*secureauditv1.Finding, 0, len(findings))
	for _, f := range findings {
		if f.GetInfrastructure() || !out[f.GetId()] {
			kept = append(kept, f)
		}
	}
	return kept
}
