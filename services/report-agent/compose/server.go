// Package compose serves ReportService: it assembles a Report from the
// header and the finding batches the orchestrator streams, renders every
// requested document and streams each back in bounded chunks.
package compose

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
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
func (s *Server) Render(stream grpc.BidiStreamingServer[secureauditv1.RenderRequest, secureauditv1.RenderResponse]) error {
	header, report, err := receive(stream)
	if err != nil {
		return s.status(err)
	}
	// The documents are rendered side by side (each reads the report and
	// nothing else) and streamed in request order.
	formats := header.GetFormats()
	docs := make([][]byte, len(formats))
	errs := make([]error, len(formats))
	var wg sync.WaitGroup
	for i, format := range formats {
		wg.Go(func() { docs[i], errs[i] = render.Document(format, report) })
	}
	wg.Wait()
	for i, format := range formats {
		doc, err := docs[i], errs[i]
		if err != nil {
			return s.status(fmt.Errorf("render %s: %w", format, err))
		}
		for _, resp := range chunks(format, doc, MaxChunk) {
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		s.log.Info("rendered", telemetry.KeyAuditID, report.GetAuditId(), keyFormat, format.String(), keyBytes, len(doc))
	}
	s.log.Info("report complete", telemetry.KeyAuditID, report.GetAuditId(),
		keyFindings, len(report.GetFindings()), keyInfrastructure, len(report.GetInfrastructureFindings()))
	return nil
}

// receive reads the request stream into the header and the assembled report.
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
	report := proto.Clone(header.GetReport()).(*secureauditv1.Report)
	want := int(header.GetFindingCount())
	received := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		batch := req.GetFindings()
		if batch == nil {
			return nil, nil, fmt.Errorf("%w: the header was sent twice", errInput)
		}
		received += len(batch.GetFindings())
		if received > want {
			return nil, nil, fmt.Errorf("%w: expected %d findings, received more", errInput, want)
		}
		for _, f := range batch.GetFindings() {
			if f.GetInfrastructure() {
				report.InfrastructureFindings = append(report.InfrastructureFindings, f)
			} else {
				report.Findings = append(report.Findings, f)
			}
		}
	}
	if received != want {
		return nil, nil, fmt.Errorf("%w: expected %d findings, received %d", errInput, want, received)
	}
	return header, report, nil
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

// chunks splits a document into RenderResponses of at most size bytes of
// data each (size > 0), with last set on the final one. An empty document
// gives one empty chunk, so the receiver always sees last.
func chunks(format secureauditv1.ReportFormat, doc []byte, size int) []*secureauditv1.RenderResponse {
	var out []*secureauditv1.RenderResponse
	for {
		n := min(len(doc), size)
		out = append(out, &secureauditv1.RenderResponse{Format: format, Data: doc[:n:n]})
		doc = doc[n:]
		if len(doc) == 0 {
			break
		}
	}
	out[len(out)-1].Last = true
	return out
}
