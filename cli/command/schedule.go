package command

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func newSchedule() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Run audits of a cluster on a cron schedule",
		Long: `schedule registers recurring audits with the orchestrator. At each due time it starts an
audit of the cluster, unless an audit of that cluster is still pending or running (then the run
is skipped and the schedule says so), and deletes the cluster's finished audits older than
--retention-days. Times are UTC. The reports of each audit are kept by the orchestrator: fetch
them with 'secureaudit list' and 'secureaudit get', or compare two with 'secureaudit diff'.

` + configHelp,
		Example: `  # every night at 02:00 UTC, keeping 90 days of audits
  secureaudit schedule add nightly --cluster aks-fabrikam-prod --cron "0 2 * * *" --retention-days 90
  secureaudit schedule list
  secureaudit schedule remove nightly`,
	}
	cmd.AddCommand(newScheduleAdd(), newScheduleList(), newScheduleRemove())
	return cmd
}

func newScheduleAdd() *cobra.Command {
	var f auditFlags
	var sc secureauditv1.Schedule
	var retention uint32
	var output string
	cmd := &cobra.Command{
		Use:   "add NAME --cluster CLUSTER --cron SPEC",
		Short: "Register a recurring audit of a cluster",
		Long: `add registers a schedule. --cron takes five fields (minute hour day-of-month month
day-of-week, in UTC) or a descriptor: @hourly, @daily, @weekly, @monthly, @every 6h.`,
		Example: `  secureaudit schedule add nightly --cluster aks-fabrikam-prod --cron "0 2 * * *" --retention-days 90
  secureaudit schedule add hourly-dev --cluster aks-dev --cron @hourly --skip-directory`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			sc.Name, sc.RetentionDays, sc.SkipDirectory = args[0], retention, f.skipDirectory
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.API().CreateSchedule(cmd.Context(), &secureauditv1.CreateScheduleRequest{Schedule: &sc})
			if err != nil {
				return fmt.Errorf("add schedule %s: %w", sc.Name, err)
			}
			return printMessage(cmd.OutOrStdout(), output, resp.GetSchedule(), func(w io.Writer) error {
				return scheduleTable(w, []*secureauditv1.Schedule{resp.GetSchedule()})
			})
		},
	}
	f.registerConnection(cmd)
	fl := cmd.Flags()
	fl.StringVar(&sc.Cluster, "cluster", "", "cluster to audit, as the rbac-agent names it (required)")
	fl.StringVar(&sc.Cron, "cron", "", `when to run, in UTC: "0 2 * * *" or @daily (required)`)
	fl.Uint32Var(&retention, "retention-days", 0, "delete the cluster's finished audits older than this many days (0 keeps them)")
	fl.BoolVar(&f.skipDirectory, "skip-directory", false, "audit without resolving identities in Entra ID")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("cron")
	outputFlag(cmd, &output)
	return cmd
}

func newScheduleList() *cobra.Command {
	var f auditFlags
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the schedules with their next and last run",
		Example: "  secureaudit schedule list\n  secureaudit schedule list -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.API().ListSchedules(cmd.Context(), &secureauditv1.ListSchedulesRequest{})
			if err != nil {
				return fmt.Errorf("list schedules: %w", err)
			}
			return printMessage(cmd.OutOrStdout(), output, resp, func(w io.Writer) error {
				return scheduleTable(w, resp.GetSchedules())
			})
		},
	}
	f.registerConnection(cmd)
	outputFlag(cmd, &output)
	return cmd
}

func newScheduleRemove() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a schedule; its past audits stay",
		Example: "  secureaudit schedule remove nightly",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.API().DeleteSchedule(cmd.Context(), &secureauditv1.DeleteScheduleRequest{Name: args[0]}); err != nil {
				return fmt.Errorf("remove schedule %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed schedule %s\n", args[0])
			return nil
		},
	}
	f.registerConnection(cmd)
	return cmd
}

// dialOrchestrator connects with the resolved connection settings.
func dialOrchestrator(f *auditFlags) (*client.Client, error) {
	addr, certDir, err := f.connection()
	if err != nil {
		return nil, err
	}
	return client.Dial(addr, certDir)
}

func scheduleTable(w io.Writer, all []*secureauditv1.Schedule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLUSTER\tCRON\tRETENTION\tNEXT RUN\tLAST RUN\tLAST")
	for _, s := range all {
		retention := "forever"
		if s.GetRetentionDays() > 0 {
			retention = fmt.Sprintf("%dd", s.GetRetentionDays())
		}
		last := "-"
		if s.GetLastRun() != nil {
			last = s.GetLastRun().AsTime().Format(time.RFC3339)
		}
		msg := s.GetLastMessage()
		if msg == "" {
			msg = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.GetName(), s.GetCluster(), s.GetCron(), retention,
			s.GetNextRun().AsTime().Format(time.RFC3339), last, msg)
	}
	return tw.Flush()
}
