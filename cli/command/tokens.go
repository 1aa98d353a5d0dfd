package command

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// newTokens is `secureaudit controls tokens`: the CC3.4 token baseline.
func newTokens() *cobra.Command {
	var f auditFlags
	var auditID string
	var limit int32
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Show the token baselines of the reasoning step and their alerts (CC3.4)",
		Long: `Every audit's model calls are metered (provider, requested and answering model, prompt
template version, input/output/cached tokens, latency, finish reason). The orchestrator keeps a
baseline per agent, answering model and template version in tokens per finding or subject, and
alerts on spikes, sustained level shifts, a rising share of truncated answers and any change
of the answering model. --audit also lists that audit's calls.`,
		Example: "  secureaudit controls tokens\n  secureaudit controls tokens --audit 0b5a3c1e-8d2f-4b7a-9c3e-1f2a3b4c5d6e",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, certDir, err := f.connection()
			if err != nil {
				return err
			}
			c, err := client.Dial(addr, certDir)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := secureauditv1.NewControlsServiceClient(c.Conn()).GetTokenControls(cmd.Context(),
				&secureauditv1.GetTokenControlsRequest{AuditId: auditID, AlertLimit: limit})
			if err != nil {
				return fmt.Errorf("token controls: %w", err)
			}
			printTokens(cmd.OutOrStdout(), resp)
			return nil
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringVar(&auditID, "audit", "", "also list this audit's model calls")
	cmd.Flags().Int32Var(&limit, "alerts", 20, "most recent alerts to show (at most 1000)")
	return cmd
}

func printTokens(w io.Writer, resp *secureauditv1.GetTokenControlsResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BASELINE (agent/provider/answering model/template)\tSAMPLES\tSTATE\tMEDIAN\tMAD\tEWMA\tTRUNCATED")
	if len(resp.GetBaselines()) == 0 {
		fmt.Fprintln(tw, "(none yet: no audit has called a model)\t\t\t\t\t\t")
	}
	for _, b := range resp.GetBaselines() {
		state := "warming up"
		if b.GetWarm() {
			state = "alerting"
		}
		k := b.GetKey()
		fmt.Fprintf(tw, "%s/%s/%s/%s\t%d\t%s\t%.1f\t%.1f\t%.1f\t%.0f%%\n", k.GetAgent(), k.GetProvider(), k.GetResponseModel(), k.GetTemplateVersion(),
			b.GetSamples(), state, b.GetMedian(), b.GetMad(), b.GetEwma(), 100*b.GetTruncationRate())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tTIME\tAUDIT\tMESSAGE")
	if len(resp.GetAlerts()) == 0 {
		fmt.Fprintln(tw, "(no alerts)\t\t\t")
	}
	for _, a := range resp.GetAlerts() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.TrimPrefix(a.GetKind().String(), "TOKEN_ALERT_KIND_"),
			a.GetTime().AsTime().Format(time.RFC3339), a.GetAuditId(), a.GetMessage())
	}
	tw.Flush()
	if len(resp.GetCalls()) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tPROVIDER\tREQUESTED\tANSWERED\tTEMPLATE\tITEMS\tIN\tOUT\tCACHED\tLATENCY\tFINISH\tRESULT")
	for i, c := range resp.GetCalls() {
		result := "used"
		switch {
		case c.GetErrorType() != "":
			result = "error: " + c.GetErrorType()
		case c.GetDiscarded():
			result = "discarded"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", i+1, c.GetProvider(), c.GetRequestModel(), c.GetResponseModel(),
			c.GetTemplateVersion(), c.GetItems(), c.GetInputTokens(), c.GetOutputTokens(), c.GetCachedTokens(),
			c.GetLatency().AsDuration().Round(time.Millisecond), c.GetFinishReason(), result)
	}
	tw.Flush()
}

// newAnomalies is `secureaudit controls anomalies`: the CC7.2 anomaly events.
func newAnomalies() *cobra.Command {
	var f auditFlags
	var auditID string
	var limit int32
	cmd := &cobra.Command{
		Use:     "anomalies",
		Short:   "List anomaly events: injection hits, discarded model answers, canary leaks, refused calls (CC7.2)",
		Example: "  secureaudit controls anomalies\n  secureaudit controls anomalies --audit 0b5a3c1e-8d2f-4b7a-9c3e-1f2a3b4c5d6e",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, certDir, err := f.connection()
			if err != nil {
				return err
			}
			return listAnomalies(cmd.Context(), cmd.OutOrStdout(), addr, certDir, auditID, limit)
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringVar(&auditID, "audit", "", "only this audit's events")
	cmd.Flags().Int32Var(&limit, "limit", 50, "most recent events to show (at most 1000)")
	return cmd
}

func listAnomalies(ctx context.Context, w io.Writer, addr, certDir, auditID string, limit int32) error {
	c, err := client.Dial(addr, certDir)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := secureauditv1.NewControlsServiceClient(c.Conn()).ListAnomalies(ctx, &secureauditv1.ListAnomaliesRequest{AuditId: auditID, Limit: limit})
	if err != nil {
		return fmt.Errorf("list anomalies: %w", err)
	}
	if len(resp.GetAnomalies()) == 0 {
		fmt.Fprintln(w, "no anomaly events")
		return nil
	}
	for _, a := range resp.GetAnomalies() {
		fmt.Fprintf(w, "%s  %-20s %-13s %s\n", a.GetTime().AsTime().Format(time.RFC3339), strings.TrimPrefix(a.GetKind().String(), "ANOMALY_KIND_"), a.GetSource(), a.GetSummary())
		if a.GetAuditId() != "" {
			fmt.Fprintf(w, "    audit: %s\n", a.GetAuditId())
		}
		keys := make([]string, 0, len(a.GetEvidence()))
		for k := range a.GetEvidence() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "    %s: %s\n", k, a.GetEvidence()[k])
		}
	}
	return nil
}
