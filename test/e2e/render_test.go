package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/report-agent/render"
)

// An audit renders only the formats it was started with; any other format
// is rendered on its first request from what the audit stored, once, and is
// the document the report-agent makes of that audit's report.
func TestReportRenderedOnRequest(t *testing.T) {
	res, out, _ := runExampleAudit(t, "json")
	json := secureauditv1.ReportFormat_REPORT_FORMAT_JSON
	if got := res.Audit.GetFormats(); !slices.Equal(got, []secureauditv1.ReportFormat{json}) {
		t.Fatalf("audit formats = %v, want [JSON]", got)
	}
	if _, err := os.Stat(filepath.Join(out, "report.md")); err == nil {
		t.Fatal("report.md written though only json was asked for")
	}
	report := readReport(t, filepath.Join(out, "report.json"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md := secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN
	// Two requests at once: both get the one document.
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = c.Fetch(ctx, res.Audit.GetId(), md, filepath.Join(dir, string(rune('a'+i))+".md")) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("fetch markdown rendered on request: %v", err)
		}
	}
	first, err := os.ReadFile(filepath.Join(dir, "a.md"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(dir, "b.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("two requests for the same late report got different documents")
	}
	// The report-agent's Markdown of the very report the JSON holds.
	if want := render.Markdown(report); !bytes.Equal(first, want) {
		t.Errorf("late markdown (%d bytes) differs from the markdown of report.json (%d bytes)", len(first), len(want))
	}
	if !bytes.Contains(first, []byte(res.Audit.GetId())) {
		t.Error("late markdown does not name the audit")
	}
	// Asked again, it is read back, not rendered again.
	renders := func() int {
		n := 0
		for _, l := range logOf(t, "orchestrator") {
			if strings.Contains(l, "report rendered on request") && strings.Contains(l, res.Audit.GetId()) {
				n++
			}
		}
		return n
	}
	if n := renders(); n != 1 {
		t.Errorf("the markdown was rendered %d times for two requests, want once", n)
	}
	if err := c.Fetch(ctx, res.Audit.GetId(), md, filepath.Join(dir, "c.md")); err != nil {
		t.Fatal(err)
	}
	third, err := os.ReadFile(filepath.Join(dir, "c.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, third) {
		t.Error("a stored late report changed")
	}
	if n := renders(); n != 1 {
		t.Errorf("the stored markdown was rendered again (%d renders logged)", n)
	}
}

// A format asked for after the audit, while the report-agent is down, is
// refused as Unavailable with a message that says why; the formats rendered
// with the audit are still served.
func TestLateReportWithoutReportAgent(t *testing.T) {
	reportAgent, _, stopReportAgent := startStoppable(t, "report-agent")
	orch := startOrchestrator(t,
		"-rbac-agent", addr(t, "rbac-agent"),
		"-risk-agent", addr(t, "risk-agent"),
		"-report-agent", reportAgent,
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(orch, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs, err := client.ParseFormats("json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, client.Options{OutDir: t.TempDir(), Formats: fs, WaitForReady: true})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	stopReportAgent()
	dir := t.TempDir()
	err = c.Fetch(ctx, res.Audit.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_HTML, filepath.Join(dir, "report.html"))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("late html with the report-agent down: err = %v, want Unavailable", err)
	}
	if !strings.Contains(err.Error(), "was not rendered when the audit finished") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err == nil {
		t.Error("a report.html was written though it could not be rendered")
	}
	if err := c.Fetch(ctx, res.Audit.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_JSON, filepath.Join(dir, "report.json")); err != nil {
		t.Errorf("the json rendered with the audit is not served: %v", err)
	}
}
