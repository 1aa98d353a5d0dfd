package cluster

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/store"
)

// Fleet is what the fleet view reads besides the registry (package store).
type Fleet interface {
	ListClusterAudits(ctx context.Context, cluster string, limit int, pageToken string) ([]*secureauditv1.Audit, string, error)
	ReportInput(ctx context.Context, auditID string) (*secureauditv1.Report, error)
	WorstFindings(ctx context.Context, auditID string, n int, skip map[string]bool) ([]*secureauditv1.Finding, error)
}

// WithFleet serves GetFleetSummary from f; without it the RPC answers
// FailedPrecondition.
func WithFleet(f Fleet) Option { return func(s *Server) { s.fleet = f } }

// WithOverdueAfter sets how long past its next run a schedule counts as
// overdue in the fleet view (DefaultOverdueAfter).
func WithOverdueAfter(d time.Duration) Option { return func(s *Server) { s.overdueAfter = d } }

// DefaultOverdueAfter is how long past its next run a schedule counts as
// overdue unless WithOverdueAfter says otherwise: ten default schedule
// ticks.
const DefaultOverdueAfter = 5 * time.Minute

// Fleet view bounds: the worst findings returned per cluster by default,
// and the audits read per cluster looking for its last success.
const (
	defaultWorst = 5
	auditsRead   = 100
	auditsPage   = 10
)

// GetFleetSummary summarises each selected cluster.
func (s *Server) GetFleetSummary(ctx context.Context, req *secureauditv1.GetFleetSummaryRequest) (*secureauditv1.GetFleetSummaryResponse, error) {
	if s.fleet == nil {
		return nil, status.Error(codes.FailedPrecondition, "the fleet view is not enabled on this orchestrator")
	}
	worst := int(req.GetWorst())
	if worst == 0 {
		worst = defaultWorst
	}
	now := s.now()
	all, err := s.store.ListClusters(ctx)
	if err != nil {
		return nil, s.internal(ctx, "fleet summary", err)
	}
	var schedules []*secureauditv1.Schedule
	if s.schedules != nil {
		if schedules, err = s.schedules.List(ctx); err != nil {
			return nil, s.internal(ctx, "fleet summary: list schedules", err)
		}
	}
	resp := &secureauditv1.GetFleetSummaryResponse{
		Totals:              &secureauditv1.SeverityCounts{},
		GeneratedAt:         timestamppb.New(now.UTC()),
		OverdueAfterSeconds: uint32(s.overdueAfter / time.Second),
	}
	for _, c := range all {
		if !Matches(c, req.GetLabels()) {
			continue
		}
		sum, err := s.summarise(ctx, c, worst)
		if err != nil {
			return nil, s.internal(ctx, "fleet summary of "+c.GetName(), err)
		}
		if n := int(req.GetTrend()); n > 0 {
			if sum.Trend, err = s.trend(ctx, c.GetName(), n); err != nil {
				return nil, s.internal(ctx, "fleet trend of "+c.GetName(), err)
			}
		}
		for _, sc := range schedules {
			if sc.GetCluster() == c.GetName() && sc.GetNextRun() != nil && now.Sub(sc.GetNextRun().AsTime()) > s.overdueAfter {
				sum.OverdueSchedules = append(sum.OverdueSchedules, sc)
			}
		}
		add(resp.Totals, sum.GetLastSucceeded().GetSummary())
		resp.Clusters = append(resp.Clusters, sum)
	}
	return resp, nil
}

// summarise reads one cluster's audits: the newest, the newest succeeded,
// the failures in between, and the succeeded one's changes and worst
// findings.
func (s *Server) summarise(ctx context.Context, c *secureauditv1.Cluster, worst int) (*secureauditv1.ClusterSummary, error) {
	sum := &secureauditv1.ClusterSummary{Cluster: c}
	// Pages of a few audits: the last success is usually among the first.
	token := ""
	for read := 0; read < auditsRead && sum.LastSucceeded == nil; {
		audits, next, err := s.fleet.ListClusterAudits(ctx, c.GetName(), auditsPage, token)
		if err != nil {
			return nil, err
		}
		for _, a := range audits {
			read++
			if sum.LastAudit == nil {
				sum.LastAudit = a
			}
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				sum.LastSucceeded = a
				break
			}
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_FAILED {
				sum.FailedAudits++
				if sum.LastFailed == nil {
					sum.LastFailed = a
				}
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	if sum.LastSucceeded == nil {
		return sum, nil
	}
	// The report's header, stored with the findings, holds the comparison
	// with the previous audit the audit made, and the accepted risks.
	input, err := s.fleet.ReportInput(ctx, sum.LastSucceeded.GetId())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	skip := map[string]bool{}
	if h := input.GetHistory(); h != nil {
		sum.HasPrevious = true
		sum.NewFindings = uint32(len(h.GetNewFindingIds()))
		sum.ChangedFindings = uint32(len(h.GetChanged()))
		sum.ResolvedFindings = uint32(len(h.GetResolved()))
	}
	for _, a := range input.GetAcceptedRisks() {
		skip[a.GetFinding().GetId()] = true
	}
	if sum.WorstFindings, err = s.fleet.WorstFindings(ctx, sum.LastSucceeded.GetId(), worst, skip); err != nil {
		return nil, err
	}
	return sum, nil
}

// trend reads a cluster's newest n audits, in any state, and returns them
// oldest first: one page, by the store's cluster index.
func (s *Server) trend(ctx context.Context, cluster string, n int) ([]*secureauditv1.Audit, error) {
	audits, _, err := s.fleet.ListClusterAudits(ctx, cluster, n, "")
	if err != nil {
		return nil, err
	}
	slices.Reverse(audits)
	return audits, nil
}

func add(total, c *secureauditv1.SeverityCounts) {
	total.Critical += c.GetCritical()
	total.High += c.GetHigh()
	total.Medium += c.GetMedium()
	total.Low += c.GetLow()
	total.Info += c.GetInfo()
}
