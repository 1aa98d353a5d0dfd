package render

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// sampleFleet is a fleet of three clusters: aks-east with four audits in
// its trend (one failed), aks-north whose only audit failed and whose
// schedule is overdue, and a never-audited dev cluster whose label value
// and finding titles try to break out of the document.
func sampleFleet() *secureauditv1.FleetReport {
	at := func(day int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 12, day, 2, 0, 0, 0, time.UTC))
	}
	ok := func(id string, day int, c, h, m, l uint32) *secureauditv1.FleetAudit {
		return &secureauditv1.FleetAudit{Id: id, State: "AUDIT_STATE_SUCCEEDED", CreatedAt: at(day), Summary: &secureauditv1.SeverityCounts{Critical: c, High: h, Medium: m, Low: l}}
	}
	failed := func(id string, day int, msg string) *secureauditv1.FleetAudit {
		return &secureauditv1.FleetAudit{Id: id, State: "AUDIT_STATE_FAILED", CreatedAt: at(day), Error: msg}
	}
	east := []*secureauditv1.FleetAudit{
		ok("00000000-0000-4000-8000-000000000001", 1, 25, 35, 18, 3),
		failed("00000000-0000-4000-8000-000000000002", 2, "collect: deadline exceeded"),
		ok("00000000-0000-4000-8000-000000000003", 3, 24, 35, 18, 3),
		ok("00000000-0000-4000-8000-000000000004", 4, 23, 36, 18, 3),
	}
	northFail := failed("00000000-0000-4000-8000-000000000005", 4, `the rbac-agent serves cluster "aks-east" | <b>not</b>`)
	return &secureauditv1.FleetReport{
		GeneratedAt:         at(5),
		Totals:              &secureauditv1.SeverityCounts{Critical: 23, High: 36, Medium: 18, Low: 3},
		OverdueAfterSeconds: 300,
		TrendAudits:         10,
		Clusters: []*secureauditv1.FleetCluster{
			{
				Name: "aks-east", Labels: map[string]string{"environment": "prod", "owner": "platform-team"},
				LastAudit: east[3], LastSucceeded: east[3], HasPrevious: true, NewFindings: 2, ChangedFindings: 1, ResolvedFindings: 3,
				WorstFindings: []*secureauditv1.Finding{
					{Id: "8fab00d9cb53be9d", RuleId: "PATH-001", Title: "escalation path to cluster-admin", Severity: secureauditv1.Severity_SEVERITY_CRITICAL},
					{Id: "8e32fcafd5955775", RuleId: "RBAC-001", Title: "cluster-admin or equivalent bound", Severity: secureauditv1.Severity_SEVERITY_CRITICAL},
				},
				Trend: east,
			},
			{
				Name: "aks-north", Labels: map[string]string{"environment": "prod"},
				LastAudit: northFail, FailedAudits: 1, LastFailed: northFail, Trend: []*secureauditv1.FleetAudit{northFail},
				OverdueSchedules: []*secureauditv1.FleetSchedule{{Name: "aks-north", Cron: "0 2 * * *", NextRun: at(4)}},
			},
			{Name: "dev", Labels: map[string]string{"environment": "dev", "owner": "x_<script>"}},
		},
	}
}

func TestFleetMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFleet(&b, secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, sampleFleet()); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{
		"Generated 2026-12-05T02:00:00Z for all registered clusters: 3 clusters.",
		"| aks-east | environment=prod, owner=platform-team | 2026-12-04T02:00:00Z | Succeeded | 23 | 36 | 18 | 3 | 0 | 2 | 1 | 3 | 0 | 0 |",
		"| aks-north | environment=prod | 2026-12-04T02:00:00Z | Failed | - | - | - | - | - | - | - | - | 1 | 1 |",
		"| dev | environment=dev, owner=x\\_\\<script\\> | never | - | - | - | - | - | - | - | - | - | 0 | 0 |",
		"| **Total** | | | | 23 | 36 | 18 | 3 | 0 | | | | 1 | 1 |",
		"Trend (newest 4 audits, oldest first):",
		"| `00000000` | 2026-12-01T02:00:00Z | Succeeded | 25 | 35 | 18 | 3 | 0 | 81 |",
		"| `00000000` | 2026-12-02T02:00:00Z | Failed | - | - | - | - | - | - |",
		"Change from the first to the last succeeded audit of the trend (3 succeeded): critical -2, high +1, all -1.",
		"- Since the audit before: 2 new, 1 changed, 3 resolved",
		"| Critical | PATH-001 | `8fab00d9cb53be9d` | escalation path to cluster-admin |",
		"- Overdue schedule aks-north (cron 0 2 \\* \\* \\*): next run was 2026-12-04T02:00:00Z",
		"- dev: never audited",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("fleet Markdown lacks %q; got:\n%s", want, doc)
		}
	}
	// The hostile error neither breaks a table nor injects HTML.
	if strings.Contains(doc, "<b>") || strings.Contains(doc, "<script>") {
		t.Errorf("fleet Markdown carries raw HTML from cluster data:\n%s", doc)
	}
}

func TestFleetHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFleet(&b, secureauditv1.ReportFormat_REPORT_FORMAT_HTML, sampleFleet()); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, want := range []string{
		`content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"`,
		`<tr class="cluster-row" data-labels="environment=prod owner=platform-team">`,
		`<svg class="trend" role="img" aria-label="trend of aks-east: counts by severity of its newest 4 audits" width="128" height="80"`,
		// The newest aks-east audit: 80 findings, the tallest bar, its
		// critical part on top.
		`<rect class="critical" x="96" y="4" width="24" height="22"></rect>`,
		`x_&lt;script&gt;`,
		`&lt;b&gt;not&lt;/b&gt;`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("fleet HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<b>not", "x_<script>", "http://", "https://"} {
		if strings.Contains(doc, bad) {
			t.Errorf("fleet HTML contains %q", bad)
		}
	}
}

func TestFleetUnsupported(t *testing.T) {
	err := WriteFleet(&bytes.Buffer{}, secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, sampleFleet())
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("WriteFleet(SARIF) = %v, want ErrUnsupported", err)
	}
}
