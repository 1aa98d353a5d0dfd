package command

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func newGet() *cobra.Command {
	var f auditFlags
	var output string
	cmd := &cobra.Command{
		Use:   "get AUDIT_ID",
		Short: "Show one audit of a running orchestrator",
		Long:  "get shows one audit: its state, stage, cluster, counts by severity and, when it failed, why.\n\n" + configHelp,
		Example: `  secureaudit get 542b0d10-ffbd-4940-a982-448d869faa3e
  secureaudit get 542b0d10-ffbd-4940-a982-448d869faa3e -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			addr, certDir, err := f.connection()
			if err != nil {
				return err
			}
			c, err := client.Dial(addr, certDir)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.API().GetAudit(cmd.Context(), &secureauditv1.GetAuditRequest{AuditId: args[0]})
			if err != nil {
				return fmt.Errorf("get audit %s: %w (list the audits with `secureaudit list`)", args[0], err)
			}
			return printMessage(cmd.OutOrStdout(), output, resp.GetAudit(), func(w io.Writer) error {
				return auditDetail(w, resp.GetAudit())
			})
		},
	}
	f.registerConnection(cmd)
	outputFlag(cmd, &output)
	return cmd
}

func auditDetail(w io.Writer, a *secureauditv1.Audit) error {
	s := a.GetSummary()
	fmt.Fprintf(w, "ID:          %s\n", a.GetId())
	fmt.Fprintf(w, "Cluster:     %s\n", a.GetCluster())
	fmt.Fprintf(w, "State:       %s\n", stateName(a.GetState()))
	fmt.Fprintf(w, "Stage:       %s\n", stageName(a.GetStage()))
	fmt.Fprintf(w, "Created:     %s\n", a.GetCreatedAt().AsTime().Format(time.RFC3339))
	if a.GetFinishedAt() != nil {
		fmt.Fprintf(w, "Finished:    %s\n", a.GetFinishedAt().AsTime().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Findings:    %d critical, %d high, %d medium, %d low, %d info\n", s.GetCritical(), s.GetHigh(), s.GetMedium(), s.GetLow(), s.GetInfo())
	fmt.Fprintf(w, "Identity:    %v\n", map[bool]string{true: "resolved in Entra ID", false: "not available"}[a.GetDirectoryAvailable()])
	fmt.Fprintf(w, "Requested:   %s\n", a.GetRequestedBy())
	if a.GetError() != "" {
		fmt.Fprintf(w, "Error:       %s\n", a.GetError())
	}
	return nil
}

func stateName(s secureauditv1.AuditState) string {
	return lower(trimPrefix(s.String(), "AUDIT_STATE_"))
}
