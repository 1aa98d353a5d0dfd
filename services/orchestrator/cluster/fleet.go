package cluster

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/services/orchestrator/store"
)

// Fleet is what the fleet view reads besides the registry (package store):
// each cluster's newest audits down to its last success with that one's
// digest, and each cluster's trend, for the whole fleet at once.
type Fleet interface {
	FleetHeads(ctx context.Context, clusters []string, worst int) (map[string]*store.Head, error)
	FleetTrends(ctx context.Context, clusters []string, n int) (map[string][]*secureauditv1.Audit, error)
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

// defaultWorst is how many worst findings the fleet view returns per
// cluster unless asked.
const defaultWorst = 5

// WithMessageLimit bounds the fleet view (GetFleetSummary's response) and
// each message of the fleet report to the report-agent (its batches of
// clusters) to n bytes instead of rpc.MaxMessageSize, the most any message
// may carry on the platform.
func WithMessageLimit(n int) Option { return func(s *Server) { s.messageLimit = n } }

func (s *Server) limit() int {
	if s.messageLimit > 0 {
		return s.messageLimit
	}
	return rpc.MaxMessageSize
}

// tooLarge is the error for a fleet view or report of clusters clusters
// whose message would be size bytes, over the limit.
func (s *Server) tooLarge(what string, clusters, size int) error {
	return status.Errorf(codes.ResourceExhausted, "%s of %d clusters would be a message of %d bytes, over the %d bytes a message may carry: "+
		"select fewer clusters by label, or ask for fewer worst findings or a shorter trend", what, clusters, size, s.limit())
}

// GetFleetSummary summarises each selected cluster. A view larger than a
// message may carry is refused (ResourceExhausted), naming its size.
func (s *Server) GetFleetSummary(ctx context.Context, req *secureauditv1.GetFleetSummaryRequest) (*secureauditv1.GetFleetSummaryResponse, error) {
	resp, err := s.fleetSummary(ctx, req)
	if err != nil {
		return nil, err
	}
	if size := proto.Size(resp); size > s.limit() {
		return nil, s.tooLarge("the fleet view", len(resp.GetClusters()), size)
	}
	return resp, nil
}

// StreamFleetSummary sends the fleet view as GetFleetSummary returns it,
// in bounded messages: the header (the view without its clusters, and
// their number), then the clusters in batches of at most fleetBatch and
// fleetBatchBytes or the message limit. Only a cluster larger than a
// message alone is refused (ResourceExhausted), naming it.
func (s *Server) StreamFleetSummary(req *secureauditv1.StreamFleetSummaryRequest, stream grpc.ServerStreamingServer[secureauditv1.StreamFleetSummaryResponse]) error {
	ctx := stream.Context()
	sum, err := s.fleetSummary(ctx, req.GetRequest())
	if err != nil {
		return err
	}
	clusters := sum.GetClusters()
	batches, err := s.batches(len(clusters), func(i int) (string, int) { return clusters[i].GetCluster().GetName(), proto.Size(clusters[i]) }, "the fleet view")
	if err != nil {
		return err
	}
	sum.Clusters = nil
	header := &secureauditv1.FleetSummaryHeader{Summary: sum, ClusterCount: uint32(len(clusters))}
	if err := stream.Send(&secureauditv1.StreamFleetSummaryResponse{Part: &secureauditv1.StreamFleetSummaryResponse_Header{Header: header}}); err != nil {
		return err
	}
	for _, b := range batches {
		batch := &secureauditv1.ClusterSummaryBatch{Clusters: clusters[b[0]:b[1]]}
		if err := stream.Send(&secureauditv1.StreamFleetSummaryResponse{Part: &secureauditv1.StreamFleetSummaryResponse_Clusters{Clusters: batch}}); err != nil {
			return err
		}
	}
	return nil
}

// fleetSummary is GetFleetSummary without the bound on its size.
func (s *Server) fleetSummary(ctx context.Context, req *secureauditv1.GetFleetSummaryRequest) (*secureauditv1.GetFleetSummaryResponse, error) {
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
	var selected []*secureauditv1.Cluster
	var names []string
	for _, c := range all {
		if Matches(c, req.GetLabels()) {
			selected = append(selected, c)
			names = append(names, c.GetName())
		}
	}
	// The whole fleet in a query or two (store.FleetHeads): the audits
	// down to each cluster's last success, and that success's digest
	// written when it finished.
	heads, err := s.fleet.FleetHeads(ctx, names, worst)
	if err != nil {
		return nil, s.internal(ctx, "fleet summary", err)
	}
	var trends map[string][]*secureauditv1.Audit
	if n := int(req.GetTrend()); n > 0 {
		if trends, err = s.fleet.FleetTrends(ctx, names, n); err != nil {
			return nil, s.internal(ctx, "fleet trends", err)
		}
	}
	for _, c := range selected {
		sum := summarise(c, heads[c.GetName()])
		if t := trends[c.GetName()]; len(t) > 0 {
			slices.Reverse(t) // oldest first
			sum.Trend = t
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

// summarise is one cluster's summary from its Head (read from its newest
// audits, down to the newest succeeded one, at most store.HeadAudits): the
// newest, the newest succeeded with its changes and worst findings from
// its digest, and the failures in between.
func summarise(c *secureauditv1.Cluster, h *store.Head) *secureauditv1.ClusterSummary {
	sum := &secureauditv1.ClusterSummary{Cluster: c, LastAudit: h.GetLast(), LastSucceeded: h.GetSucceeded(), LastFailed: h.GetLastFailed(), FailedAudits: h.GetFailed()}
	if d := h.GetDigest(); sum.LastSucceeded != nil && d != nil {
		sum.HasPrevious = d.HasPrevious
		sum.NewFindings, sum.ChangedFindings, sum.ResolvedFindings = d.New, d.Changed, d.Resolved
		sum.WorstFindings = d.Worst
	}
	return sum
}

func add(total, c *secureauditv1.SeverityCounts) {
	total.Critical += c.GetCritical()
	total.High += c.GetHigh()
	total.Medium += c.GetMedium()
	total.Low += c.GetLow()
	total.Info += c.GetInfo()
}
