package command

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func newFleet() *cobra.Command {
	var (
		f      auditFlags
		labels []string
		worst  uint32
		output string
		format string
		out    string
		trend  uint32
	)
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Summarise the registered clusters: last audit, counts, changes, failures",
		Long: `fleet shows every registered cluster (or those with the given labels): its last audit, the
counts by severity of its last succeeded audit and what that audit found new (+) and resolved (-)
since the audit before it, the failed audits since, overdue schedules, and each cluster's worst
findings.

--trend N adds each cluster's newest N audits' counts, oldest first. With --format md, html or
md,html it writes the fleet report instead, rendered by the
report-agent like the cluster report: the same view with each cluster's trend (the counts by
severity of its newest --trend audits, default 10), to fleet.md and fleet.html in --out.

` + configHelp,
		Example: "  secureaudit fleet\n  secureaudit fleet --label environment=prod --worst 10\n  secureaudit fleet -o json\n  secureaudit fleet --label environment=prod --format md,html --out fleet-report",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			want, err := parseLabels(labels)
			if err != nil {
				return err
			}
			var formats []client.Format
			if cmd.Flags().Changed("format") {
				if cmd.Flags().Changed("output") {
					return usageError(errors.New("--format writes the fleet report to files; -o formats the summary: give one of them"))
				}
				if formats, err = client.ParseFleetFormats(format); err != nil {
					return usageError(err)
				}
			} else if cmd.Flags().Changed("out") {
				return usageError(errors.New("--out is for the fleet report: add --format md, html or md,html"))
			}
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			if formats != nil {
				paths, err := c.FetchFleet(cmd.Context(), &secureauditv1.GetFleetReportRequest{Labels: want, Worst: worst, Trend: trend}, formats, out)
				for _, p := range paths {
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
				}
				return err
			}
			resp, err := c.FleetSummary(cmd.Context(), &secureauditv1.GetFleetSummaryRequest{Labels: want, Worst: worst, Trend: trend})
			if err != nil {
				return err
			}
			return printMessage(cmd.OutOrStdout(), output, resp, func(w io.Writer) error {
				return fleetTable(w, resp)
			})
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only clusters with this label, KEY=VALUE (repeatable: every one)")
	cmd.Flags().Uint32Var(&worst, "worst", 0, "worst findings shown per cluster (default 5, at most 50)")
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&format, "format", "", "write the fleet report in these formats instead: md, html or md,html")
	cmd.Flags().StringVar(&out, "out", "out", "with --format: directory to write fleet.md and fleet.html to")
	cmd.Flags().Uint32Var(&trend, "trend", 0, "audits per cluster in the trend, at most 50 (the report's default 10; the summary shows none unless given)")
	return cmd
}

func counts(s *secureauditv1.SeverityCounts) string {
	return fmt.Sprintf("%d/%d/%d/%d/%d", s.GetCritical(), s.GetHigh(), s.GetMedium(), s.GetLow(), s.GetInfo())
}

func fleetTable(w io.Writer, resp *secureauditv1.GetFleetSummaryResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tLABELS\tLAST AUDIT\tSTATE\tCRIT/HIGH/MED/LOW/INFO\tNEW\tRESOLVED\tFAILED\tOVERDUE")
	for _, s := range resp.GetClusters() {
		last, state := "never", "-"
		if a := s.GetLastAudit(); a != nil {
			last = a.GetCreatedAt().AsTime().Format(time.RFC3339)
			state = strings.TrimPrefix(a.GetState().String(), "AUDIT_STATE_")
		}
		sum, added, resolved := "-", "-", "-"
		if a := s.GetLastSucceeded(); a != nil {
			sum = counts(a.GetSummary())
			if s.GetHasPrevious() {
				added, resolved = fmt.Sprintf("+%d", s.GetNewFindings()), fmt.Sprintf("-%d", s.GetResolvedFindings())
			} else {
				added, resolved = "first", "first"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.GetCluster().GetName(), labelString(s.GetCluster().GetLabels()),
			last, state, sum, added, resolved, s.GetFailedAudits(), len(s.GetOverdueSchedules()))
	}
	fmt.Fprintf(tw, "%d clusters\t\t\t\t%s\t\t\t\t\n", len(resp.GetClusters()), counts(resp.GetTotals()))
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, s := range resp.GetClusters() {
		name := s.GetCluster().GetName()
		if f := s.GetLastFailed(); f != nil {
			notes = append(notes, fmt.Sprintf("%s: audit %s failed: %s", name, f.GetId(), f.GetError()))
		}
		for _, sc := range s.GetOverdueSchedules() {
			notes = append(notes, fmt.Sprintf("%s: schedule %s overdue: due %s", name, sc.GetName(), sc.GetNextRun().AsTime().Format(time.RFC3339)))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nattention:")
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
	var trend bool
	for _, s := range resp.GetClusters() {
		if len(s.GetTrend()) == 0 {
			continue
		}
		if !trend {
			fmt.Fprintln(w, "\ntrend (CRIT/HIGH/MED/LOW/INFO of each audit, oldest first; x: no report):")
			trend = true
		}
		points := make([]string, len(s.GetTrend()))
		for i, a := range s.GetTrend() {
			points[i] = "x"
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				points[i] = counts(a.GetSummary())
			}
		}
		fmt.Fprintf(w, "  %s  %s\n", s.GetCluster().GetName(), strings.Join(points, " "))
	}
	var shown bool
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range resp.GetClusters() {
		for _, f := range s.GetWorstFindings() {
			if !shown {
				fmt.Fprintln(w, "\nworst findings:")
				shown = true
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.GetCluster().GetName(), severityName(f.GetSeverity()), f.GetRuleId(), f.GetId(), f.GetTitle())
		}
	}
	return tw.Flush()
}
