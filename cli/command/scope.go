package command

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// newScope is `secureaudit scope`: approve, list and review the agents'
// scope manifests (SOC 2 CC5.2).
func newScope() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scope",
		Short: "Approve, list and review the agents' scope manifests",
		Long: `Each agent presents the digest of its scope manifest (deploy/scopes/<agent>.yaml) when the
orchestrator connects. An agent whose digest has no approval, or changed since it was
approved, is quarantined: the orchestrator refuses to run audits through it and the audit
says why. Approvals and reviews are recorded in the evidence log.`,
	}
	cmd.AddCommand(newScopeApprove(), newScopeList(), newScopeReview())
	return cmd
}

func scopeClient(f *auditFlags) (*client.Client, secureauditv1.ScopeServiceClient, error) {
	addr, certDir, err := f.connection()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.Dial(addr, certDir)
	if err != nil {
		return nil, nil, err
	}
	return c, secureauditv1.NewScopeServiceClient(c.Conn()), nil
}

func newScopeApprove() *cobra.Command {
	var f auditFlags
	var digest, ticket, approver, reason string
	cmd := &cobra.Command{
		Use:     "approve WORKLOAD --digest sha256:... --ticket ID",
		Short:   "Record the approval of one digest of an agent's scope manifest",
		Example: "  secureaudit scope approve rbac-agent --digest sha256:4f2a... --ticket SEC-1234 --reason 'adds pods/list'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, api, err := scopeClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			if approver == "" {
				if u, err := user.Current(); err == nil {
					approver = u.Username
				}
			}
			resp, err := api.ApproveScope(cmd.Context(), &secureauditv1.ApproveScopeRequest{Workload: args[0], Digest: digest, Approver: approver, Ticket: ticket, Reason: reason})
			if err != nil {
				return err
			}
			a := resp.GetApproval()
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s %s by %s (ticket %s) at %s; evidence entry %d\n", a.GetWorkload(), a.GetDigest(), a.GetApprover(), a.GetTicket(),
				a.GetApprovedAt().AsTime().Format(time.RFC3339), a.GetEvidenceIndex())
			return nil
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringVar(&digest, "digest", "", "manifest digest to approve, as `secureaudit scope list` shows it (required)")
	cmd.Flags().StringVar(&ticket, "ticket", "", "change ticket of the approval (required)")
	cmd.Flags().StringVar(&approver, "approver", "", "who approves (default: the current user)")
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	_ = cmd.MarkFlagRequired("digest")
	_ = cmd.MarkFlagRequired("ticket")
	return cmd
}

func newScopeList() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show each agent's presented manifest digest, its approval and whether it is quarantined",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, api, err := scopeClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ListScopes(cmd.Context(), &secureauditv1.ListScopesRequest{})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, s := range resp.GetScopes() {
				fmt.Fprintf(out, "%-13s %-12s presents %s (version %s)\n", s.GetWorkload(), strings.TrimPrefix(s.GetState().String(), "SCOPE_STATE_"), orNone(s.GetPresentedDigest()), orNone(s.GetPresentedVersion()))
				if a := s.GetApproval(); a != nil {
					age := time.Since(a.GetApprovedAt().AsTime()).Round(time.Minute)
					dev := ""
					if a.GetDevelopment() {
						dev = " [DEVELOPMENT auto-approval]"
					}
					fmt.Fprintf(out, "              approved  %s by %s, ticket %s, %s ago%s\n", a.GetDigest(), a.GetApprover(), a.GetTicket(), age, dev)
				}
				if s.GetCredentialOutcome() != "" {
					fmt.Fprintf(out, "              credential %s: %s\n", s.GetCredentialOutcome(), s.GetCredentialSummary())
				}
				if s.GetReason() != "" {
					fmt.Fprintf(out, "              why       %s\n", s.GetReason())
				}
			}
			return nil
		},
	}
	f.registerConnection(cmd)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newScopeReview() *cobra.Command {
	var f auditFlags
	var reviewer, out string
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Compare each manifest with the behaviour observed since the last review",
		Long: `review lists, per workload, the methods called, the callers seen and the denials since the
last recorded review, flags what the manifest does not declare, and gives each approval's
age. With --reviewer the review is recorded in the evidence log and a new period starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, api, err := scopeClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ReviewScopes(cmd.Context(), &secureauditv1.ReviewScopesRequest{Reviewer: reviewer})
			if err != nil {
				return err
			}
			if out != "" {
				if err := os.WriteFile(out, []byte(resp.GetMarkdown()), 0o644); err != nil {
					return fmt.Errorf("write review: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d deviations\n", out, resp.GetDeviations())
			} else {
				fmt.Fprint(cmd.OutOrStdout(), resp.GetMarkdown())
			}
			if resp.GetEvidenceIndex() >= 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "recorded as evidence entry %d\n", resp.GetEvidenceIndex())
			}
			return nil
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringVar(&reviewer, "reviewer", "", "record the review under this name and start a new period")
	cmd.Flags().StringVar(&out, "out", "", "write the report to this file instead of standard output")
	return cmd
}
