package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Renderer is the report-agent's RenderFleet, which renders the fleet
// report (secureauditv1.ReportServiceClient has it).
type Renderer interface {
	RenderFleet(ctx context.Context, in *secureauditv1.RenderFleetRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[secureauditv1.RenderFleetResponse], error)
}

// WithRenderer serves GetFleetReport, rendered by r (the report-agent);
// without it the RPC answers FailedPrecondition.
func WithRenderer(r Renderer) Option { return func(s *Server) { s.renderer = r } }

// defaultTrend is how many of each cluster's newest audits the fleet
// report's trend shows unless the request says.
const defaultTrend = 10

// GetFleetReport gathers the fleet view with each cluster's trend, has the
// report-agent render it, and streams the documents on as they arrive. A
// fleet larger than a message may carry is refused (ResourceExhausted),
// naming its size.
func (s *Server) GetFleetReport(req *secureauditv1.GetFleetReportRequest, stream grpc.ServerStreamingServer[secureauditv1.GetFleetReportResponse]) error {
	ctx := stream.Context()
	if s.renderer == nil {
		return status.Error(codes.FailedPrecondition, "the fleet report is not enabled on this orchestrator (no report-agent)")
	}
	trend := req.GetTrend()
	if trend == 0 {
		trend = defaultTrend
	}
	sum, err := s.fleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{Labels: req.GetLabels(), Worst: req.GetWorst(), Trend: trend})
	if err != nil {
		return err
	}
	// The fleet travels to the report-agent in one message: one larger
	// than a message may carry is refused here, naming its size, rather
	// than by the transport.
	in := &secureauditv1.RenderFleetRequest{Fleet: FleetReport(sum, req.GetLabels(), trend), Formats: req.GetFormats()}
	if size := proto.Size(in); size > s.limit() {
		return s.tooLarge("the fleet report", len(in.GetFleet().GetClusters()), size)
	}
	docs, err := s.renderer.RenderFleet(ctx, in)
	if err != nil {
		return s.agentError(ctx, err)
	}
	open := false
	for {
		chunk, err := docs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s.agentError(ctx, err)
		}
		if err := stream.Send(&secureauditv1.GetFleetReportResponse{Format: chunk.GetFormat(), Data: chunk.GetData(), Last: chunk.GetLast()}); err != nil {
			return err
		}
		open = !chunk.GetLast()
	}
	if open {
		return s.agentError(ctx, errors.New("the report-agent ended the fleet report without its last chunk"))
	}
	return nil
}

// agentError reports a failed rendering as Unavailable with the
// report-agent's status message (ours to pass on: the contract's messages
// and the agent's own), logging it.
func (s *Server) agentError(ctx context.Context, err error) error {
	s.log.ErrorContext(ctx, "render the fleet report", "error", err.Error())
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("report-agent: render the fleet report: %s", msg))
}

// FleetReport is the fleet view as the report-agent renders it: the
// summary's clusters with what the report shows of their audits and
// schedules, and each one's trend.
func FleetReport(sum *secureauditv1.GetFleetSummaryResponse, selector map[string]string, trend uint32) *secureauditv1.FleetReport {
	out := &secureauditv1.FleetReport{
		GeneratedAt: sum.GetGeneratedAt(), Selector: selector, Totals: sum.GetTotals(),
		OverdueAfterSeconds: sum.GetOverdueAfterSeconds(), TrendAudits: trend,
	}
	for _, c := range sum.GetClusters() {
		fc := &secureauditv1.FleetCluster{
			Name: c.GetCluster().GetName(), Labels: c.GetCluster().GetLabels(),
			LastAudit: fleetAudit(c.GetLastAudit()), LastSucceeded: fleetAudit(c.GetLastSucceeded()),
			HasPrevious: c.GetHasPrevious(), NewFindings: c.GetNewFindings(), ChangedFindings: c.GetChangedFindings(), ResolvedFindings: c.GetResolvedFindings(),
			WorstFindings: c.GetWorstFindings(), FailedAudits: c.GetFailedAudits(), LastFailed: fleetAudit(c.GetLastFailed()),
		}
		for _, sc := range c.GetOverdueSchedules() {
			fc.OverdueSchedules = append(fc.OverdueSchedules, &secureauditv1.FleetSchedule{
				Name: sc.GetName(), Cron: sc.GetCron(), NextRun: sc.GetNextRun(), LastRun: sc.GetLastRun(), LastMessage: sc.GetLastMessage(),
			})
		}
		for _, a := range c.GetTrend() {
			fc.Trend = append(fc.Trend, fleetAudit(a))
		}
		out.Clusters = append(out.Clusters, fc)
	}
	return out
}

func fleetAudit(a *secureauditv1.Audit) *secureauditv1.FleetAudit {
	if a == nil {
		return nil
	}
	return &secureauditv1.FleetAudit{
		Id: a.GetId(), State: a.GetState().String(), CreatedAt: a.GetCreatedAt(), FinishedAt: a.GetFinishedAt(),
		Error: a.GetError(), Summary: a.GetSummary(),
	}
}
