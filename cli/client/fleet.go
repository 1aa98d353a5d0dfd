package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// FleetFormats are the formats of the fleet report, as named on the
// command line, and the files they are written to.
var FleetFormats = []Format{
	{Name: "md", File: "fleet.md", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN},
	{Name: "html", File: "fleet.html", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_HTML},
}

// ParseFleetFormats parses a comma-separated list of fleet report formats
// such as "md,html".
func ParseFleetFormats(list string) ([]Format, error) {
	var out []Format
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		i := 0
		for i < len(FleetFormats) && FleetFormats[i].Name != name {
			i++
		}
		if i == len(FleetFormats) {
			return nil, fmt.Errorf("unknown fleet report format %q: want md, html or both (md,html)", name)
		}
		out = append(out, FleetFormats[i])
	}
	if len(out) == 0 {
		return nil, errors.New("no fleet report format given")
	}
	return out, nil
}

// FetchFleet asks the orchestrator for the fleet report in formats and
// writes each document to its file in dir (fleet.md, fleet.html), each
// atomically once it is complete. It returns the paths written.
func (c *Client) FetchFleet(ctx context.Context, req *secureauditv1.GetFleetReportRequest, formats []Format, dir string) ([]string, error) {
	req.Formats = nil
	files := map[secureauditv1.ReportFormat]string{}
	for _, f := range formats {
		req.Formats = append(req.Formats, f.Proto)
		files[f.Proto] = filepath.Join(dir, f.File)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	stream, err := c.clusters.GetFleetReport(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fleet report: %w", err)
	}
	var (
		written []string
		tmp     *os.File
	)
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return written, fmt.Errorf("fleet report: %w", err)
		}
		path, ok := files[resp.GetFormat()]
		if !ok {
			return written, fmt.Errorf("fleet report: the orchestrator sent %s, which was not asked for", resp.GetFormat())
		}
		if tmp == nil {
			if tmp, err = os.CreateTemp(dir, ".fleet-*"); err != nil {
				return written, fmt.Errorf("write %s: %w", path, err)
			}
		}
		if _, err := tmp.Write(resp.GetData()); err != nil {
			return written, fmt.Errorf("write %s: %w", path, err)
		}
		if !resp.GetLast() {
			continue
		}
		name := tmp.Name()
		err = tmp.Chmod(0o600)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		tmp = nil
		if err == nil {
			err = os.Rename(name, path)
		}
		if err != nil {
			os.Remove(name)
			return written, fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
	}
	if tmp != nil {
		return written, errors.New("fleet report: the stream ended inside a document")
	}
	return written, nil
}

// FleetSummary reads the fleet view through StreamFleetSummary (the header,
// then the clusters in batches: a fleet of any size) and returns it whole,
// as GetFleetSummary would. An orchestrator without StreamFleetSummary (one
// built before it) is asked GetFleetSummary instead.
func (c *Client) FleetSummary(ctx context.Context, req *secureauditv1.GetFleetSummaryRequest) (*secureauditv1.GetFleetSummaryResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.clusters.StreamFleetSummary(ctx, &secureauditv1.StreamFleetSummaryRequest{Request: req})
	if err != nil {
		return nil, fmt.Errorf("fleet summary: %w", err)
	}
	var (
		sum  *secureauditv1.GetFleetSummaryResponse
		want int
	)
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if status.Code(err) == codes.Unimplemented && sum == nil {
			resp, err := c.clusters.GetFleetSummary(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("fleet summary: %w", err)
			}
			return resp, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fleet summary: %w", err)
		}
		if h := resp.GetHeader(); h != nil {
			if sum != nil {
				return nil, errors.New("fleet summary: the orchestrator sent the header twice")
			}
			sum, want = h.GetSummary(), int(h.GetClusterCount())
			sum.Clusters = make([]*secureauditv1.ClusterSummary, 0, want)
			continue
		}
		if sum == nil {
			return nil, errors.New("fleet summary: the orchestrator sent clusters before the header")
		}
		sum.Clusters = append(sum.Clusters, resp.GetClusters().GetClusters()...)
		if len(sum.GetClusters()) > want {
			return nil, fmt.Errorf("fleet summary: the orchestrator announced %d clusters and sent more", want)
		}
	}
	if sum == nil {
		return nil, errors.New("fleet summary: the orchestrator sent no header")
	}
	if len(sum.GetClusters()) != want {
		return nil, fmt.Errorf("fleet summary: the orchestrator announced %d clusters and sent %d", want, len(sum.GetClusters()))
	}
	return sum, nil
}
