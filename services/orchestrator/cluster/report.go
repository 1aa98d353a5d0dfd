package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Renderer is the report-agent's RenderFleetStream, which renders the
// fleet report (secureauditv1.ReportServiceClient has it).
type Renderer interface {
	RenderFleetStream(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[secureauditv1.RenderFleetStreamRequest, secureauditv1.RenderFleetStreamResponse], error)
}

// WithRenderer serves GetFleetReport, rendered by r (the report-agent);
// without it the RPC answers FailedPrecondition.
func WithRenderer(r Renderer) Option { return func(s *Server) { s.renderer = r } }

// defaultTrend is how many of each cluster's newest audits the fleet
// report's trend shows unless the request says.
const defaultTrend = 10

// The fleet report's clusters travel to the report-agent in batches of at
// most fleetBatch clusters (the contract's bound on FleetClusterBatch) and
// fleetBatchBytes bytes, or the message limit when that is lower.
const (
	fleetBatch      = 500
	fleetBatchBytes = 4 << 20
)

// GetFleetReport gathers the fleet view with each cluster's trend, streams
// it to the report-agent (a header, then the clusters in batches, each
// message within the message limit), and streams the documents on as they
// arrive. A fleet of any size is rendered; only a single cluster larger
// than a message may carry is refused (ResourceExhausted), naming it.
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
	fleet := FleetReport(sum, req.GetLabels(), trend)
	batches, err := s.fleetBatches(fleet.GetClusters())
	if err != nil {
		return err
	}
	// Everything is sent before anything is received: the report-agent
	// renders once it holds the whole fleet.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	docs, err := s.renderer.RenderFleetStream(ctx)
	if err != nil {
		return s.agentError(ctx, err)
	}
	sent := 0
	send := func(m *secureauditv1.RenderFleetStreamRequest) error {
		sent += proto.Size(m)
		if err := docs.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				// The agent ended the stream: its status says why.
				_, err = docs.Recv()
			}
			return s.agentError(ctx, err)
		}
		return nil
	}
	clusters := fleet.GetClusters()
	fleet.Clusters = nil
	header := &secureauditv1.RenderFleetHeader{Fleet: fleet, Formats: req.GetFormats(), ClusterCount: uint32(len(clusters))}
	if err := send(&secureauditv1.RenderFleetStreamRequest{Part: &secureauditv1.RenderFleetStreamRequest_Header{Header: header}}); err != nil {
		return err
	}
	for _, b := range batches {
		batch := &secureauditv1.FleetClusterBatch{Clusters: clusters[b[0]:b[1]]}
		if err := send(&secureauditv1.RenderFleetStreamRequest{Part: &secureauditv1.RenderFleetStreamRequest_Clusters{Clusters: batch}}); err != nil {
			return err
		}
	}
	if err := docs.CloseSend(); err != nil {
		return s.agentError(ctx, err)
	}
	s.log.InfoContext(ctx, "fleet report sent to the report-agent", "clusters", len(clusters), "batches", len(batches), "bytes", sent)
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

// fleetBatches splits clusters into batches, as [start, end) pairs, of at
// most fleetBatch clusters each, and of at most fleetBatchBytes (or the
// message limit, when lower) as a RenderFleetStreamRequest. A cluster that
// does not fit a message alone is refused, naming it and its size.
func (s *Server) fleetBatches(clusters []*secureauditv1.FleetCluster) ([][2]int, error) {
	return s.batches(len(clusters), func(i int) (string, int) { return clusters[i].GetName(), proto.Size(clusters[i]) }, "the fleet report")
}

// batches splits n clusters, whose names and encoded sizes size gives, into
// batches as fleetBatches does, for what (a message wrapping a repeated
// field of number 820 in a oneof field of a two-byte number).
func (s *Server) batches(n int, size func(i int) (string, int), what string) ([][2]int, error) {
	// The message and the batch wrap the clusters in two length-delimited
	// fields of two-byte tags: at most 2+5 bytes each.
	const wrap = 2 * (2 + binary.MaxVarintLen32)
	budget := min(fleetBatchBytes, s.limit()) - wrap
	var out [][2]int
	for start := 0; start < n; {
		end, total := start, 0
		for end < n && end-start < fleetBatch {
			name, m := size(end)
			m += protowire.SizeTag(820) + protowire.SizeVarint(uint64(m))
			if total+m > budget {
				if end == start {
					return nil, status.Errorf(codes.ResourceExhausted, "cluster %s of %s alone would be a message of %d bytes, over the %d bytes a message may carry: "+
						"ask for fewer worst findings or a shorter trend", name, what, m+wrap, s.limit())
				}
				break
			}
			total += m
			end++
		}
		out = append(out, [2]int{start, end})
		start = end
	}
	return out, nil
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
