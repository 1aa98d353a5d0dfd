package render

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// FleetSupported reports whether WriteFleet renders format: the fleet
// report is for readers, in Markdown and HTML.
func FleetSupported(format secureauditv1.ReportFormat) bool {
	return format == secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN || format == secureauditv1.ReportFormat_REPORT_FORMAT_HTML
}

// WriteFleet renders the fleet report in format into w: per cluster its
// last audit, counts by severity, changes since the audit before, failed
// audits, overdue schedules, worst findings and its trend (the counts of
// its newest audits). Markdown and HTML come from one view, so they say
// the same. It wraps ErrUnsupported for any other format.
func WriteFleet(w io.Writer, format secureauditv1.ReportFormat, f *secureauditv1.FleetReport) error {
	switch format {
	case secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN:
		return WriteFleetMarkdown(w, f)
	case secureauditv1.ReportFormat_REPORT_FORMAT_HTML:
		return WriteFleetHTML(w, f)
	}
	return fmt.Errorf("%w for the fleet report: %s", ErrUnsupported, format)
}

// countsView is one row of counts by severity.
type countsView struct {
	Critical, High, Medium, Low, Info uint32
}

func newCounts(c *secureauditv1.SeverityCounts) countsView {
	return countsView{c.GetCritical(), c.GetHigh(), c.GetMedium(), c.GetLow(), c.GetInfo()}
}

// Total is the sum of the counts.
func (c countsView) Total() uint32 { return c.Critical + c.High + c.Medium + c.Low + c.Info }

// Slash is the counts as CRIT/HIGH/MED/LOW/INFO.
func (c countsView) Slash() string {
	return fmt.Sprintf("%d/%d/%d/%d/%d", c.Critical, c.High, c.Medium, c.Low, c.Info)
}

// fleetView is what both fleet documents show.
type fleetView struct {
	GeneratedAt  string
	Selector     string
	Totals       countsView
	TrendAudits  int
	OverdueAfter string
	Clusters     []fleetClusterView
	Failed       int
	Overdue      int
	Attention    []string
}

// fleetClusterView is one cluster.
type fleetClusterView struct {
	Name, Labels                         string
	LabelPairs                           []string
	LastAudit                            *fleetAuditView
	LastSucceeded                        *fleetAuditView
	Counts                               *countsView
	New, Changed, Resolved               string
	Failed                               uint32
	LastFailed                           *fleetAuditView
	Overdue                              []fleetScheduleView
	Worst                                []worstView
	Trend                                []fleetAuditView
	Chart                                chartView
	CriticalChange, TotalChange, Changes string
}

type fleetAuditView struct {
	ID, Short, Created, State, Error string
	Succeeded                        bool
	Counts                           countsView
}

type fleetScheduleView struct {
	Name, Cron, NextRun, LastMessage string
}

type worstView struct {
	Severity, Class, RuleID, ID, Title string
}

// chartView is the trend as an inline SVG of stacked bars, one per audit,
// oldest on the left: its geometry is computed here, so the template only
// places rectangles.
type chartView struct {
	Width, Height int
	Bars          []chartBar
}

type chartBar struct {
	X, Width int
	Label    string
	Failed   bool
	Parts    []chartPart
}

type chartPart struct {
	Y, Height int
	Class     string
}

// Chart dimensions, in SVG user units.
const (
	chartHeight = 80
	barWidth    = 24
	barGap      = 8
)

var stateText = map[string]string{
	"AUDIT_STATE_UNSPECIFIED": "Unknown",
	"AUDIT_STATE_PENDING":     "Pending",
	"AUDIT_STATE_RUNNING":     "Running",
	"AUDIT_STATE_SUCCEEDED":   "Succeeded",
	"AUDIT_STATE_FAILED":      "Failed",
	"AUDIT_STATE_CANCELLED":   "Cancelled",
}

func newFleetAudit(a *secureauditv1.FleetAudit) *fleetAuditView {
	if a == nil {
		return nil
	}
	state, ok := stateText[a.GetState()]
	if !ok {
		state = "Unknown"
	}
	short := a.GetId()
	if len(short) > 8 {
		short = short[:8]
	}
	return &fleetAuditView{
		ID: a.GetId(), Short: short, Created: timeText(a.GetCreatedAt()), State: state,
		Error: clip(a.GetError(), 300), Succeeded: a.GetState() == "AUDIT_STATE_SUCCEEDED", Counts: newCounts(a.GetSummary()),
	}
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func labelPairs(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func signed(n int64) string {
	if n > 0 {
		return fmt.Sprintf("+%d", n)
	}
	return fmt.Sprint(n)
}

func newFleetView(f *secureauditv1.FleetReport) fleetView {
	v := fleetView{
		GeneratedAt:  timeText(f.GetGeneratedAt()),
		Selector:     "all registered clusters",
		Totals:       newCounts(f.GetTotals()),
		TrendAudits:  int(f.GetTrendAudits()),
		OverdueAfter: fmt.Sprintf("%d s", f.GetOverdueAfterSeconds()),
	}
	if sel := labelPairs(f.GetSelector()); len(sel) > 0 {
		v.Selector = "clusters labelled " + strings.Join(sel, ", ")
	}
	for _, c := range f.GetClusters() {
		cv := fleetClusterView{
			Name: c.GetName(), LabelPairs: labelPairs(c.GetLabels()),
			LastAudit: newFleetAudit(c.GetLastAudit()), LastSucceeded: newFleetAudit(c.GetLastSucceeded()),
			Failed: c.GetFailedAudits(), LastFailed: newFleetAudit(c.GetLastFailed()),
			New: "-", Changed: "-", Resolved: "-",
		}
		cv.Labels = strings.Join(cv.LabelPairs, ", ")
		if cv.LastSucceeded != nil {
			counts := newCounts(c.GetLastSucceeded().GetSummary())
			cv.Counts = &counts
			cv.New, cv.Changed, cv.Resolved = "first", "first", "first"
			if c.GetHasPrevious() {
				cv.New, cv.Changed, cv.Resolved = fmt.Sprint(c.GetNewFindings()), fmt.Sprint(c.GetChangedFindings()), fmt.Sprint(c.GetResolvedFindings())
			}
		}
		for _, s := range c.GetOverdueSchedules() {
			cv.Overdue = append(cv.Overdue, fleetScheduleView{Name: s.GetName(), Cron: s.GetCron(), NextRun: timeText(s.GetNextRun()), LastMessage: clip(s.GetLastMessage(), 300)})
		}
		for _, w := range c.GetWorstFindings() {
			sev := severityText(w.GetSeverity())
			cv.Worst = append(cv.Worst, worstView{Severity: sev, Class: strings.ToLower(sev), RuleID: w.GetRuleId(), ID: w.GetId(), Title: w.GetTitle()})
		}
		for _, a := range c.GetTrend() {
			cv.Trend = append(cv.Trend, *newFleetAudit(a))
		}
		cv.Chart = newChart(cv.Trend)
		cv.Changes = trendChanges(cv.Trend)
		v.Failed += int(cv.Failed)
		v.Overdue += len(cv.Overdue)
		if cv.LastFailed != nil {
			v.Attention = append(v.Attention, fmt.Sprintf("%s: %s since the last success; the newest, %s, failed: %s",
				cv.Name, plural(int(cv.Failed), "1 failed audit", fmt.Sprintf("%d failed audits", cv.Failed)), cv.LastFailed.ID, cv.LastFailed.Error))
		}
		for _, s := range cv.Overdue {
			v.Attention = append(v.Attention, fmt.Sprintf("%s: schedule %s (%s) is overdue: its next run was %s", cv.Name, s.Name, s.Cron, s.NextRun))
		}
		if cv.LastAudit == nil {
			v.Attention = append(v.Attention, cv.Name+": never audited")
		}
		v.Clusters = append(v.Clusters, cv)
	}
	return v
}

// trendChanges says how the counts moved from the oldest to the newest
// succeeded audit of the trend.
func trendChanges(trend []fleetAuditView) string {
	var first, last *fleetAuditView
	n := 0
	for i := range trend {
		if !trend[i].Succeeded {
			continue
		}
		n++
		if first == nil {
			first = &trend[i]
		}
		last = &trend[i]
	}
	if n < 2 {
		return ""
	}
	return fmt.Sprintf("from the first to the last succeeded audit of the trend (%d succeeded): critical %s, high %s, all %s",
		n, signed(int64(last.Counts.Critical)-int64(first.Counts.Critical)), signed(int64(last.Counts.High)-int64(first.Counts.High)),
		signed(int64(last.Counts.Total())-int64(first.Counts.Total())))
}

// newChart lays out the trend's stacked bars, scaled to the largest total;
// a failed or unfinished audit is a short grey bar.
func newChart(trend []fleetAuditView) chartView {
	c := chartView{Width: max(1, len(trend)*(barWidth+barGap)), Height: chartHeight}
	var top uint32 = 1
	for _, a := range trend {
		top = max(top, a.Counts.Total())
	}
	for i, a := range trend {
		bar := chartBar{X: i * (barWidth + barGap), Width: barWidth, Label: a.Short + " " + a.Created + " " + a.State}
		if !a.Succeeded {
			bar.Failed = true
			bar.Parts = []chartPart{{Y: chartHeight - 4, Height: 4, Class: "none"}}
			c.Bars = append(c.Bars, bar)
			continue
		}
		bar.Label += " " + a.Counts.Slash()
		y := chartHeight
		for _, p := range []struct {
			n     uint32
			class string
		}{{a.Counts.Info, "info"}, {a.Counts.Low, "low"}, {a.Counts.Medium, "medium"}, {a.Counts.High, "high"}, {a.Counts.Critical, "critical"}} {
			if p.n == 0 {
				continue
			}
			h := max(1, int(uint64(p.n)*chartHeight/uint64(top)))
			y -= h
			bar.Parts = append(bar.Parts, chartPart{Y: max(y, 0), Height: h, Class: p.class})
		}
		c.Bars = append(c.Bars, bar)
	}
	return c
}

// WriteFleetMarkdown writes the fleet report in Markdown to w. Every
// string from a cluster (names, labels, errors, titles) is escaped.
func WriteFleetMarkdown(w io.Writer, f *secureauditv1.FleetReport) error {
	v := newFleetView(f)
	b := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(b, "# Fleet report\n\n")
	fmt.Fprintf(b, "Generated %s for %s: %s. Counts by severity are those of each cluster's last succeeded audit; the trend shows its newest %d audits, oldest first.\n\n",
		v.GeneratedAt, md(v.Selector), plural(len(v.Clusters), "1 cluster", fmt.Sprintf("%d clusters", len(v.Clusters))), v.TrendAudits)
	b.WriteString("## Summary\n\n")
	b.WriteString("| Cluster | Labels | Last audit | State | Critical | High | Medium | Low | Info | New | Changed | Resolved | Failed | Overdue |\n")
	b.WriteString("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range v.Clusters {
		last, state := "never", "-"
		if c.LastAudit != nil {
			last, state = c.LastAudit.Created, c.LastAudit.State
		}
		counts := "| - | - | - | - | - "
		if c.Counts != nil {
			counts = fmt.Sprintf("| %d | %d | %d | %d | %d ", c.Counts.Critical, c.Counts.High, c.Counts.Medium, c.Counts.Low, c.Counts.Info)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s %s| %s | %s | %s | %d | %d |\n", md(c.Name), mdList(c.LabelPairs, "-"), last, state, counts, c.New, c.Changed, c.Resolved, c.Failed, len(c.Overdue))
	}
	fmt.Fprintf(b, "| **Total** | | | | %d | %d | %d | %d | %d | | | | %d | %d |\n\n", v.Totals.Critical, v.Totals.High, v.Totals.Medium, v.Totals.Low, v.Totals.Info, v.Failed, v.Overdue)
	if len(v.Attention) > 0 {
		b.WriteString("## Needs attention\n\n")
		for _, a := range v.Attention {
			fmt.Fprintf(b, "- %s\n", md(a))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Clusters\n")
	for _, c := range v.Clusters {
		fmt.Fprintf(b, "\n### %s\n\n", md(c.Name))
		fmt.Fprintf(b, "- Labels: %s\n", mdList(c.LabelPairs, "none"))
		if c.LastAudit == nil {
			b.WriteString("- Never audited.\n")
		} else {
			fmt.Fprintf(b, "- Last audit: `%s`, %s, %s\n", c.LastAudit.ID, c.LastAudit.State, c.LastAudit.Created)
		}
		if c.LastSucceeded != nil {
			fmt.Fprintf(b, "- Last succeeded: `%s`, %s: %s (critical/high/medium/low/info)\n", c.LastSucceeded.ID, c.LastSucceeded.Created, c.Counts.Slash())
			if c.New == "first" {
				b.WriteString("- Since the audit before: none, the cluster's first audit\n")
			} else {
				fmt.Fprintf(b, "- Since the audit before: %s new, %s changed, %s resolved\n", c.New, c.Changed, c.Resolved)
			}
		}
		if c.LastFailed != nil {
			fmt.Fprintf(b, "- Failed since the last success: %d; newest `%s`: %s\n", c.Failed, c.LastFailed.ID, md(c.LastFailed.Error))
		}
		for _, s := range c.Overdue {
			fmt.Fprintf(b, "- Overdue schedule %s (cron %s): next run was %s\n", md(s.Name), md(s.Cron), s.NextRun)
		}
		if len(c.Trend) > 0 {
			fmt.Fprintf(b, "\nTrend (newest %d audits, oldest first):\n\n", len(c.Trend))
			b.WriteString("| Audit | Created | State | Critical | High | Medium | Low | Info | Total |\n")
			b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|\n")
			for _, a := range c.Trend {
				if a.Succeeded {
					fmt.Fprintf(b, "| `%s` | %s | %s | %d | %d | %d | %d | %d | %d |\n", a.Short, a.Created, a.State, a.Counts.Critical, a.Counts.High, a.Counts.Medium, a.Counts.Low, a.Counts.Info, a.Counts.Total())
				} else {
					fmt.Fprintf(b, "| `%s` | %s | %s | - | - | - | - | - | - |\n", a.Short, a.Created, a.State)
				}
			}
			if c.Changes != "" {
				fmt.Fprintf(b, "\nChange %s.\n", c.Changes)
			}
		}
		if len(c.Worst) > 0 {
			b.WriteString("\nWorst findings:\n\n| Severity | Rule | Finding | Title |\n|---|---|---|---|\n")
			for _, w := range c.Worst {
				fmt.Fprintf(b, "| %s | %s | `%s` | %s |\n", w.Severity, md(w.RuleID), md(w.ID), md(w.Title))
			}
		}
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write fleet Markdown: %w", err)
	}
	return nil
}

//go:embed fleet.html.tmpl
var fleetHTMLSource string

// WriteFleetHTML writes the fleet report as one self-contained HTML file to
// w: the same content as the Markdown, under the cluster report's Content
// Security Policy (inline style and script only, no request of any kind),
// each cluster's trend as an inline SVG chart with its table, and a label
// filter. html/template escapes every value for its context.
func WriteFleetHTML(w io.Writer, f *secureauditv1.FleetReport) error {
	t, err := template.New("fleet").Funcs(template.FuncMap{
		"join": strings.Join,
	}).Parse(fleetHTMLSource)
	if err != nil {
		return fmt.Errorf("parse fleet HTML template: %w", err)
	}
	b := bufio.NewWriterSize(w, 64<<10)
	if err := t.Execute(b, newFleetView(f)); err != nil {
		return fmt.Errorf("render fleet HTML: %w", err)
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write fleet HTML: %w", err)
	}
	return nil
}
