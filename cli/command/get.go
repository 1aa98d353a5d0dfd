package command

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func newGet() *cobra.Command {
	var f auditFlags
	var output string
	var changes bool
	cmd := &cobra.Command{
		Use:   "get AUDIT_ID",
		Short: "Show one audit of a running orchestrator",
		Long:  "get shows one audit: its state, stage, cluster, counts by severity and, when it failed, why.\n\n" + configHelp,
		Example: `  secureaudit get 542b0d10-ffbd-4940-a982-448d869faa3e
  secureaudit get 542b0d10-ffbd-4940-a982-448d869faa3e -o yaml

  # what is new, changed and resolved since the previous audit of the same cluster
  secureaudit get 542b0d10-ffbd-4940-a982-448d869faa3e --changes`,
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
			if changes {
				return printChanges(cmd, c, args[0], output)
			}
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
	cmd.Flags().BoolVar(&changes, "changes", false, "show what changed since the previous audit of the same cluster")
	return cmd
}

// printChanges shows the orchestrator's comparison of an audit with the
// previous audit of its cluster.
func printChanges(cmd *cobra.Command, c *client.Client, id, output string) error {
	resp, err := c.API().GetAuditHistory(cmd.Context(), &secureauditv1.GetAuditHistoryRequest{AuditId: id})
	if err != nil {
		return fmt.Errorf("changes of audit %s: %w", id, err)
	}
	h := resp.GetHistory()
	if h == nil {
		fmt.Fprintf(cmd.OutOrStdout(), "audit %s is the first audit of its cluster: nothing to compare\n", id)
		return nil
	}
	return printMessage(cmd.OutOrStdout(), output, h, func(w io.Writer) error {
		dir, err := os.MkdirTemp("", "secureaudit-get-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "report.json")
		if err := c.Fetch(cmd.Context(), id, secureauditv1.ReportFormat_REPORT_FORMAT_JSON, path); err != nil {
			return err
		}
		after, err := readReport(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "since audit %s of %s: ", h.GetPreviousAuditId(), h.GetPreviousGeneratedAt().AsTime().Format(time.RFC3339))
		return diffTable(w, h, after)
	})
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
