// Package client runs an audit against an orchestrator's AuditService: start
// it, follow its progress, and fetch its reports.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

// Format is a report format as named on the command line.
type Format struct {
	Name  string
	File  string
	Proto secureauditv1.ReportFormat
}

// Formats are the formats the command line accepts.
var Formats = []Format{
	{Name: "md", File: "report.md", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN},
	{Name: "json", File: "report.json", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_JSON},
	{Name: "html", File: "report.html", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_HTML},
	{Name: "sarif", File: "report.sarif", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_SARIF},
	{Name: "oscal", File: "report.oscal.json", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL},
	{Name: "csv", File: "report.csv", Proto: secureauditv1.ReportFormat_REPORT_FORMAT_CSV},
}

// FormatNames lists the format names, comma-separated, for help texts.
func FormatNames() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// AllFormats is the comma-separated list of every format, the default.
func AllFormats() string {
	return strings.ReplaceAll(FormatNames(), ", ", ",")
}

// ParseFormats parses a comma-separated list such as "md,json".
func ParseFormats(list string) ([]Format, error) {
	var out []Format
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		var found bool
		for _, f := range Formats {
			if f.Name == name {
				out = append(out, f)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown format %q: want a comma-separated list of %s", name, FormatNames())
		}
		seen[name] = true
	}
	if len(out) == 0 {
		return nil, errors.New("no report format given")
	}
	return out, nil
}

// Client talks to one orchestrator as the cli workload.
type Client struct {
	conn     *grpc.ClientConn
	audit    secureauditv1.AuditServiceClient
	clusters secureauditv1.ClusterServiceClient
}

// Dial connects to the orchestrator with the cli certificate in certDir.
func Dial(addr, certDir string) (*Client, error) {
	creds, err := rpc.LoadCredentials(pki.Paths(certDir, identity.CLI))
	if err != nil {
		return nil, err
	}
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	tr, err := telemetry.NewTracing(identity.CLI, "")
	if err != nil {
		return nil, err
	}
	conn, err := rpc.Dial(addr, identity.ID(identity.Orchestrator), rpc.ClientConfig{Credentials: creds, Tracer: tr.Provider, Validator: v})
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, audit: secureauditv1.NewAuditServiceClient(conn), clusters: secureauditv1.NewClusterServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the connection, for the orchestrator's other services.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Clusters returns the ClusterService client.
func (c *Client) Clusters() secureauditv1.ClusterServiceClient { return c.clusters }

// API returns the AuditService client.
func (c *Client) API() secureauditv1.AuditServiceClient { return c.audit }

// Options are the settings of one audit run.
type Options struct {
	Cluster       string
	SkipDirectory bool
	OutDir        string
	Formats       []Format
	// Progress receives one line per event; nil discards them.
	Progress io.Writer
	// OnEvent, when set, receives each progress event instead of Progress.
	OnEvent func(*secureauditv1.AuditEvent)
	// WaitForReady makes the first call wait for the orchestrator to come up
	// instead of failing at once when it is not reachable yet.
	WaitForReady bool
}

// Result is a finished audit and the files written.
type Result struct {
	Audit *secureauditv1.Audit
	Files []string
}

// Run starts an audit, follows it to the end and writes its reports. A failed
// or cancelled audit is an error that says why.
func (c *Client) Run(ctx context.Context, opts Options) (*Result, error) {
	req := &secureauditv1.StartAuditRequest{Cluster: opts.Cluster, SkipDirectory: opts.SkipDirectory}
	// Only the formats to write are rendered as the audit finishes; the
	// orchestrator renders any other on request later.
	for _, f := range opts.Formats {
		req.Formats = append(req.Formats, f.Proto)
	}
	resp, err := c.audit.StartAudit(ctx, req, grpc.WaitForReady(opts.WaitForReady))
	if err != nil {
		return nil, fmt.Errorf("start audit: %w", err)
	}
	id := resp.GetAudit().GetId()
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	fmt.Fprintf(progress, "audit %s started\n", id)
	onEvent := opts.OnEvent
	if onEvent == nil {
		onEvent = func(e *secureauditv1.AuditEvent) { printEvent(progress, e) }
	}
	if err := c.WatchEvents(ctx, id, onEvent); err != nil {
		return nil, err
	}
	got, err := c.audit.GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
	if err != nil {
		return nil, fmt.Errorf("get audit %s: %w", id, err)
	}
	a := got.GetAudit()
	switch a.GetState() {
	case secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED:
	case secureauditv1.AuditState_AUDIT_STATE_FAILED:
		return &Result{Audit: a}, fmt.Errorf("audit %s failed: %s", id, a.GetError())
	default:
		return &Result{Audit: a}, fmt.Errorf("audit %s ended %s", id, strings.TrimPrefix(a.GetState().String(), "AUDIT_STATE_"))
	}
	res := &Result{Audit: a}
	if err := os.MkdirAll(opts.OutDir, 0o700); err != nil {
		return res, fmt.Errorf("create output directory: %w", err)
	}
	for _, f := range opts.Formats {
		path := filepath.Join(opts.OutDir, f.File)
		if err := c.Fetch(ctx, id, f.Proto, path); err != nil {
			return res, err
		}
		res.Files = append(res.Files, path)
	}
	return res, nil
}

// Watch prints the audit's events until it ends.
func (c *Client) Watch(ctx context.Context, id string, w io.Writer) error {
	return c.WatchEvents(ctx, id, func(e *secureauditv1.AuditEvent) { printEvent(w, e) })
}

// printEvent writes one event as a plain line.
func printEvent(w io.Writer, e *secureauditv1.AuditEvent) {
	stage := strings.ToLower(strings.TrimPrefix(e.GetStage().String(), "AUDIT_STAGE_"))
	if e.GetStage() == secureauditv1.AuditStage_AUDIT_STAGE_UNSPECIFIED {
		stage = "queued"
	}
	fmt.Fprintf(w, "  [%-8s] %s\n", stage, e.GetMessage())
}

// WatchEvents calls fn with each of the audit's events until it ends.
func (c *Client) WatchEvents(ctx context.Context, id string, fn func(*secureauditv1.AuditEvent)) error {
	stream, err := c.audit.WatchAudit(ctx, &secureauditv1.WatchAuditRequest{AuditId: id})
	if err != nil {
		return fmt.Errorf("watch audit %s: %w", id, err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("watch audit %s: %w", id, err)
		}
		fn(resp.GetEvent())
	}
}

// Fetch writes one report to path, atomically.
func (c *Client) Fetch(ctx context.Context, id string, format secureauditv1.ReportFormat, path string) error {
	stream, err := c.audit.GetReport(ctx, &secureauditv1.GetReportRequest{AuditId: id, Format: format})
	if err != nil {
		return fmt.Errorf("get %s report: %w", format, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tmp.Close()
			return fmt.Errorf("get %s report: %w", format, err)
		}
		if _, err := tmp.Write(resp.GetData()); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
