// Package compose serves ReportService: it assembles a Report from the
// header and the finding batches the orchestrator streams, renders every
// requested document and streams each back in bounded chunks.
package compose

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/compact"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/services/report-agent/render"
)

// MaxChunk is the largest document chunk sent in one RenderResponse, the
// bound the contract puts on RenderResponse.data.
const MaxChunk = 1 << 20

// Log attribute keys.
const (
	keyFormat         = "format"
	keyBytes          = "bytes"
	keyFindings       = "findings"
	keyInfrastructure = "infrastructure_findings"
	keyClusters       = "clusters"
	keyBatches        = "batches"
	keyRevoke         = "revoke_findings"
)

// Server implements secureauditv1.ReportServiceServer.
type Server struct {
	secureauditv1.UnimplementedReportServiceServer
	log *slog.Logger
}

// NewServer returns a Server that logs to log.
func NewServer(log *slog.Logger) *Server {
	return &Server{log: log}
}

// errInput marks errors in what the caller sent; they become InvalidArgument.
var errInput = errors.New("invalid input")

// Render receives the header, then the finding batches until the client
// closes its side, checks that the announced number of findings arrived,
// renders every requested document and streams them in request order.
// When the header says review_follows, the findings end at the announced
// count: Render answers them with the report's actions, takes the review
// state the client sends back, and renders once the client closes its side.
func (s *Server) Render(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) error {
	header, report, err := receive(stream)
	if err != nil {
		return s.status(err)
	}
	if header.GetReviewFollows() {
		if err := s.exchangeActions(stream, report); err != nil {
			return err
		}
	}
	// The documents are rendered one after another, each into a writer
	// that sends a chunk as soon as MaxChunk bytes of it are produced: the
	// report-agent holds the findings once and one document's working
	// state, never a whole document.
	for _, format := range header.GetFormats() {
		w := &chunkWriter{format: format, send: stream.Send}
		if err := render.Write(w, format, report); err != nil {
			if w.sendErr != nil {
				return w.sendErr
			}
			return s.status(fmt.Errorf("render %s: %w", format, err))
		}
		if err := w.close(); err != nil {
			return err
		}
		s.log.Info("rendered", telemetry.KeyAuditID, report.GetAuditId(), keyFormat, format.String(), keyBytes, w.total)
	}
	s.log.Info("report complete", telemetry.KeyAuditID, report.GetAuditId(),
		keyFindings, len(report.GetFindings()), keyInfrastructure, len(report.GetInfrastructureFindings()))
	return nil
}

// exchangeActions answers the findings with the report's actions (the
// findings whose action is Revoke, which the orchestrator tracks), then
// reads the review state the orchestrator sends back into the report and
// waits for the client to close its side.
func (s *Server) exchangeActions(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse], report *secureauditv1.Report) error {
	revoke := render.RevokeFindings(report)
	if err := stream.Send(&secureauditv1.RenderResponse{Actions: &secureauditv1.RenderActions{RevokeFindingIds: revoke}}); err != nil {
		return err
	}
	req, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return s.status(fmt.Errorf("%w: the stream ended before the review state the header announced", errInput))
	}
	if err != nil {
		return err
	}
	review, ok := req.GetPart().(*secureauditv1.RenderRequest_Review)
	if !ok {
		return s.status(fmt.Errorf("%w: expected the review state after the findings, received %T", errInput, req.GetPart()))
	}
	report.Review = review.Review
	if err := ended(stream, "the review state"); err != nil {
		return s.status(err)
	}
	s.log.Info("revoke actions", telemetry.KeyAuditID, report.GetAuditId(), keyRevoke, len(revoke))
	return nil
}

// RenderFleet renders the fleet report in each requested format (Markdown,
// HTML) and streams the documents in request order, in chunks of at most
// MaxChunk bytes, the last of each marked. Deprecated in the contract for
// RenderFleetStream (the whole fleet in one message), still served.
func (s *Server) RenderFleet(req *secureauditv1.RenderFleetRequest, stream grpc.ServerStreamingServer[secureauditv1.RenderFleetResponse]) error {
	return s.renderFleet(req.GetFleet(), req.GetFormats(), func(r *secureauditv1.RenderResponse) error {
		return stream.Send(&secureauditv1.RenderFleetResponse{Format: r.GetFormat(), Data: r.GetData(), Last: r.GetLast()})
	})
}

// RenderFleetStream receives the fleet report's header, then its clusters
// in batches until the client closes its side, checks that the announced
// number of clusters arrived, and renders and streams the documents as
// RenderFleet does: the same bytes for the same fleet.
func (s *Server) RenderFleetStream(stream grpc.BidiStreamingServer[secureauditv1.RenderFleetStreamRequest, secureauditv1.RenderFleetStreamResponse]) error {
	header, fleet, batches, err := receiveFleet(stream)
	if err != nil {
		return s.status(err)
	}
	s.log.Info("received fleet report", keyClusters, len(fleet.GetClusters()), keyBatches, batches)
	return s.renderFleet(fleet, header.GetFormats(), func(r *secureauditv1.RenderResponse) error {
		return stream.Send(&secureauditv1.RenderFleetStreamResponse{Format: r.GetFormat(), Data: r.GetData(), Last: r.GetLast()})
	})
}

// renderFleet renders fleet in each format, in order, sending the chunks
// through send.
func (s *Server) renderFleet(fleet *secureauditv1.FleetReport, formats []secureauditv1.ReportFormat, send func(*secureauditv1.RenderResponse) error) error {
	for _, f := range formats {
		if !render.FleetSupported(f) {
			return s.status(fmt.Errorf("%w: the fleet report is not rendered as %s", errInput, f))
		}
	}
	for _, format := range formats {
		w := &chunkWriter{format: format, send: send}
		if err := render.WriteFleet(w, format, fleet); err != nil {
			if w.sendErr != nil {
				return w.sendErr
			}
			return s.status(fmt.Errorf("render the fleet report as %s: %w", format, err))
		}
		if err := w.close(); err != nil {
			return err
		}
		s.log.Info("rendered fleet report", keyFormat, format.String(), keyBytes, w.total, keyClusters, len(fleet.GetClusters()))
	}
	return nil
}

// receiveFleet reads RenderFleetStream's input into the header and the
// assembled fleet, and counts the batches.
func receiveFleet(stream grpc.BidiStreamingServer[secureauditv1.RenderFleetStreamRequest, secureauditv1.RenderFleetStreamResponse]) (*secureauditv1.RenderFleetHeader, *secureauditv1.FleetReport, int, error) {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, nil, 0, fmt.Errorf("%w: the stream ended before the fleet report's header", errInput)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	header := first.GetHeader()
	if header == nil {
		return nil, nil, 0, fmt.Errorf("%w: the first message must be the fleet report's header", errInput)
	}
	for _, f := range header.GetFormats() {
		if !render.FleetSupported(f) {
			return nil, nil, 0, fmt.Errorf("%w: the fleet report is not rendered as %s", errInput, f)
		}
	}
	fleet := proto.Clone(header.GetFleet()).(*secureauditv1.FleetReport)
	want := int(header.GetClusterCount())
	fleet.Clusters = make([]*secureauditv1.FleetCluster, 0, want)
	batches := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, 0, err
		}
		batch := req.GetClusters()
		if batch == nil {
			return nil, nil, 0, fmt.Errorf("%w: the fleet report's header was sent twice", errInput)
		}
		batches++
		if len(fleet.GetClusters())+len(batch.GetClusters()) > want {
			return nil, nil, 0, fmt.Errorf("%w: expected %d clusters, received more", errInput, want)
		}
		fleet.Clusters = append(fleet.Clusters, batch.GetClusters()...)
	}
	if got := len(fleet.GetClusters()); got != want {
		return nil, nil, 0, fmt.Errorf("%w: expected %d clusters, received %d", errInput, want, got)
	}
	return header, fleet, batches, nil
}

// receive reads the request stream into the header and the assembled report.
// The report comes in the header, the findings after it; or, when the
// header says report_follows, the findings come first, as the orchestrator
// relays them from the risk-agent, and the report ends them
// (RenderRequest.report), with their number and the findings it withholds.
func receive(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) (*secureauditv1.RenderHeader, *secureauditv1.Report, error) {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: the stream ended before the header", errInput)
	}
	if err != nil {
		return nil, nil, err
	}
	header := first.GetHeader()
	if header == nil {
		return nil, nil, fmt.Errorf("%w: the first message must be the header", errInput)
	}
	for _, f := range header.GetFormats() {
		if !render.Supported(f) {
			return nil, nil, fmt.Errorf("%w: format %s is not supported", errInput, f)
		}
	}
	if header.GetReportFollows() {
		report, err := receiveFollowed(stream)
		if err != nil {
			return nil, nil, err
		}
		// Without a review state to wait for, the client's side ends
		// with the report.
		if !header.GetReviewFollows() {
			if err := ended(stream, "the report"); err != nil {
				return nil, nil, err
			}
		}
		return header, report, nil
	}
	report := proto.Clone(header.GetReport()).(*secureauditv1.Report)
	want := int(header.GetFindingCount())
	received := 0
	share := compact.New()
	// When the review state follows, the findings end at the announced
	// count: the client waits for the actions before it closes its side.
	for !header.GetReviewFollows() || received < want {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		batch := req.GetFindings()
		if batch == nil {
			if req.GetReview() != nil && !header.GetReviewFollows() {
				return nil, nil, fmt.Errorf("%w: a review state the header did not announce (review_follows)", errInput)
			}
			if req.GetReview() != nil {
				return nil, nil, fmt.Errorf("%w: the review state before the findings ended (%d of %d received)", errInput, received, want)
			}
			if req.GetReport() != nil {
				return nil, nil, fmt.Errorf("%w: a report after the findings, but the header carried the report (report_follows not set)", errInput)
			}
			return nil, nil, fmt.Errorf("%w: the header was sent twice", errInput)
		}
		received += len(batch.GetFindings())
		if received > want {
			return nil, nil, fmt.Errorf("%w: expected %d findings, received more", errInput, want)
		}
		for _, f := range batch.GetFindings() {
			share.Finding(f)
			file(report, f)
		}
	}
	if received != want {
		return nil, nil, fmt.Errorf("%w: expected %d findings, received %d", errInput, want, received)
	}
	return header, report, nil
}

// ended checks that the client's side ends after last, what it sent last.
func ended(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse], last string) error {
	_, err := stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: a message after %s", errInput, last)
}

// receiveFollowed reads the findings of a header that says report_follows,
// until the report that ends them, and returns the report with its
// findings: every one received but those it withholds, each of which must
// be one received. It does not read past the report: the review state, or
// the end of the client's side, follows it as after a header's findings.
func receiveFollowed(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) (*secureauditv1.Report, error) {
	var findings []*secureauditv1.Finding
	share := compact.New()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the stream ended after %d findings without the report the header announced (report_follows)", errInput, len(findings))
		}
		if err != nil {
			return nil, err
		}
		switch p := req.GetPart().(type) {
		case *secureauditv1.RenderRequest_Findings:
			for _, f := range p.Findings.GetFindings() {
				share.Finding(f)
				findings = append(findings, f)
			}
		case *secureauditv1.RenderRequest_Report:
			return followedReport(p.Report, findings)
		case *secureauditv1.RenderRequest_Review:
			return nil, fmt.Errorf("%w: the review state before the report (report_follows)", errInput)
		default:
			return nil, fmt.Errorf("%w: the header was sent twice", errInput)
		}
	}
}

// followedReport checks the report that ends the findings against them and
// files every finding it does not withhold.
func followedReport(end *secureauditv1.RenderReport, findings []*secureauditv1.Finding) (*secureauditv1.Report, error) {
	if got, want := len(findings), int(end.GetFindingCount()); got != want {
		return nil, fmt.Errorf("%w: the report counts %d findings sent, received %d", errInput, want, got)
	}
	withheld := make(map[string]bool, len(end.GetWithheldFindingIds()))
	for _, id := range end.GetWithheldFindingIds() {
		withheld[id] = true
	}
	// A finding is withheld only because the report lists it among its
	// accepted risks: one withheld otherwise would leave the documents
	// without it, and without saying so.
	accepted := map[string]bool{}
	for _, a := range end.GetReport().GetAcceptedRisks() {
		accepted[a.GetFinding().GetId()] = true
	}
	for id := range withheld {
		if !accepted[id] {
			return nil, fmt.Errorf("%w: the report withholds finding %s, which is not one of its accepted risks", errInput, id)
		}
	}
	for id := range accepted {
		if !withheld[id] {
			return nil, fmt.Errorf("%w: the report lists finding %s among its accepted risks but does not withhold it from its findings", errInput, id)
		}
	}
	report := proto.Clone(end.GetReport()).(*secureauditv1.Report)
	for _, f := range findings {
		if withheld[f.GetId()] && !f.GetInfrastructure() {
			delete(withheld, f.GetId())
			continue
		}
		file(report, f)
	}
	if len(withheld) > 0 {
		ids := make([]string, 0, len(withheld))
		for id := range withheld {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil, fmt.Errorf("%w: the report withholds %d findings that were not sent (or are on platform-managed identities): %s", errInput, len(ids), strings.Join(ids[:min(len(ids), 10)], ", "))
	}
	return report, nil
}

// file adds a finding to the report's main or infrastructure findings.
func file(report *secureauditv1.Report, f *secureauditv1.Finding) {
	if f.GetInfrastructure() {
		report.InfrastructureFindings = append(report.InfrastructureFindings, f)
	} else {
		report.Findings = append(report.Findings, f)
	}
}

// status turns an error into the gRPC status the caller sees: input errors
// as InvalidArgument, statuses from the transport as they are, anything
// else logged once and returned as a bare Internal.
func (s *Server) status(err error) error {
	if errors.Is(err, errInput) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	s.log.Error("render failed", telemetry.KeyError, err.Error())
	return status.Error(codes.Internal, "internal")
}

// chunkWriter sends what is written to it as RenderResponses of exactly
// MaxChunk bytes of data, the last one (marked last on close) shorter or
// empty: an empty document gives one empty chunk, so the receiver always
// sees last. The chunk boundaries depend only on the document's bytes.
type chunkWriter struct {
	format  secureauditv1.ReportFormat
	send    func(*secureauditv1.RenderResponse) error
	buf     []byte
	total   int64
	sendErr error
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	if c.sendErr != nil {
		return 0, c.sendErr
	}
	written := 0
	for len(p) > 0 {
		if len(c.buf) == MaxChunk {
			// A full chunk goes once more bytes follow, so that the
			// final chunk is never an empty one after a full one.
			if err := c.flush(false); err != nil {
				return written, err
			}
		}
		if c.buf == nil {
			c.buf = make([]byte, 0, MaxChunk)
		}
		n := min(MaxChunk-len(c.buf), len(p))
		c.buf = append(c.buf, p[:n]...)
		p = p[n:]
		written += n
		c.total += int64(n)
	}
	return written, nil
}

func (c *chunkWriter) flush(last bool) error {
	// Send encodes the message before it returns, so the buffer is reused.
	if err := c.send(&secureauditv1.RenderResponse{Format: c.format, Data: c.buf, Last: last}); err != nil {
		c.sendErr = err
		return err
	}
	c.buf = c.buf[:0]
	return nil
}

// close sends the final chunk, marked last.
func (c *chunkWriter) close() error {
	if c.sendErr != nil {
		return c.sendErr
	}
	return c.flush(true)
}
