package command

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

var itemKeyPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// newReview is `secureaudit review`: the access review's decisions taken
// back (issue 15).
func newReview() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Decide access review items, import the filled-in CSV, show the campaign",
		Long: `Each audit opens an access review campaign over its review items (the report's "Access review",
one row of report.csv each), due after -review-due-days (14 by default). A person with the
approver role decides each item, Confirmed, Requires justification or Revoke, one at a time
(review decide KEY) or by importing the CSV with its decision column filled in (review import).
The person is the one their verified OpenID Connect ID token names (--id-token-file); nobody
decides an item about their own access. Every Revoke is checked at the next audit of the
cluster: verified when the grant is gone, else reported still present, its severity raised for
every audit it survives. Each decision, verification, still-present grant and overdue campaign
is an entry of the evidence log (CC6.2, CC6.3, CC5.2, CC4.1).`,
	}
	cmd.AddCommand(newReviewDecide(), newReviewImport(), newReviewStatus())
	return cmd
}

func reviewClient(f *auditFlags) (*client.Client, secureauditv1.ReviewServiceClient, error) {
	addr, certDir, err := f.connection()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.Dial(addr, certDir)
	if err != nil {
		return nil, nil, err
	}
	return c, secureauditv1.NewReviewServiceClient(c.Conn()), nil
}

func decisionArg(s string) (secureauditv1.ReviewDecisionKind, error) {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", " ")) {
	case "confirmed", "confirm":
		return secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, nil
	case "requires justification", "justify":
		return secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REQUIRES_JUSTIFICATION, nil
	case "revoke":
		return secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE, nil
	}
	return 0, fmt.Errorf("--decision %q: one of Confirmed, Requires-justification, Revoke", s)
}

func decisionName(d secureauditv1.ReviewDecisionKind) string {
	return map[secureauditv1.ReviewDecisionKind]string{secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED: "Confirmed",
		secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REQUIRES_JUSTIFICATION: "Requires justification",
		secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE:                 "Revoke"}[d]
}

func printRevocation(cmd *cobra.Command, v *secureauditv1.Revocation) {
	var bs []string
	for _, b := range v.GetBindings() {
		bs = append(bs, bindingArg(b))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "revocation %d tracked: remove %s's access through %s; the next audit of %s verifies it\n", v.GetId(), subjectArg(v.GetSubject()), strings.Join(bs, ", "), v.GetCluster())
}

func newReviewDecide() *cobra.Command {
	var f auditFlags
	var idt idTokenFlag
	var decision, justification, audit string
	cmd := &cobra.Command{
		Use:   "decide KEY --decision Confirmed|Requires-justification|Revoke [--justification TEXT] --id-token-file FILE",
		Short: "Decide one access review item",
		Long: `decide records your decision on one item of the latest audit's access review (--audit for
another), named by its key (the report's "Item key", report.csv's key column).`,
		Example: `  secureaudit review decide 3f1c0a9b2d4e5f60 --decision Revoke --justification 'left the team' --id-token-file bob.jwt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !itemKeyPattern.MatchString(args[0]) {
				return fmt.Errorf("item key %q: 16 lowercase hex digits, as the report's Item key and report.csv's key column show it", args[0])
			}
			kind, err := decisionArg(decision)
			if err != nil {
				return err
			}
			tok, err := idt.token(cmd)
			if err != nil {
				return err
			}
			if tok == "" {
				return errors.New("--id-token-file FILE is required: a decision names the person who made it")
			}
			c, api, err := reviewClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.DecideReview(cmd.Context(), &secureauditv1.DecideReviewRequest{AuditId: audit, ItemKey: args[0], Decision: kind, Justification: justification, IdToken: tok})
			if err != nil {
				return err
			}
			d := resp.GetDecision()
			fmt.Fprintf(cmd.OutOrStdout(), "decided %s for item %s (%s) of audit %s by %s; evidence entry %d\n", decisionName(d.GetDecision()), d.GetItemKey(), subjectArg(d.GetSubject()),
				d.GetAuditId(), person(d.GetDecidedBy()), d.GetEvidenceIndex())
			if v := resp.GetRevocation(); v != nil {
				printRevocation(cmd, v)
			}
			return nil
		},
	}
	f.registerConnection(cmd)
	idt.register(cmd)
	cmd.Flags().StringVar(&decision, "decision", "", "Confirmed, Requires-justification or Revoke (required)")
	cmd.Flags().StringVar(&justification, "justification", "", "why, or the question to the access's owner (required with Requires-justification)")
	cmd.Flags().StringVar(&audit, "audit", "", "audit ID whose campaign the item is of (default: the latest succeeded audit)")
	return cmd
}

func newReviewImport() *cobra.Command {
	var f auditFlags
	var idt idTokenFlag
	var audit string
	cmd := &cobra.Command{
		Use:   "import REPORT.CSV --id-token-file FILE",
		Short: "Record the decisions of a filled-in access review CSV",
		Long: `import records the decisions of report.csv with its decision column filled in (Confirmed,
Requires justification, Revoke; the comment column is the justification), all made by you.
Rows are matched by their key column, in any order; rows without a decision are skipped. A row
whose key names no item of the audit, whose subject or access was edited, that repeats an item,
that was decided already, or that is about your own access refuses the sheet, naming the row:
then nothing of it is recorded.`,
		Example: `  secureaudit review import report.csv --id-token-file bob.jwt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read the sheet: %w", err)
			}
			tok, err := idt.token(cmd)
			if err != nil {
				return err
			}
			if tok == "" {
				return errors.New("--id-token-file FILE is required: a decision names the person who made it")
			}
			c, api, err := reviewClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ImportReview(cmd.Context(), &secureauditv1.ImportReviewRequest{AuditId: audit, Csv: data, IdToken: tok})
			if err != nil {
				return err
			}
			for _, d := range resp.GetDecisions() {
				fmt.Fprintf(cmd.OutOrStdout(), "decided %s for item %s (%s) by %s; evidence entry %d\n", decisionName(d.GetDecision()), d.GetItemKey(), subjectArg(d.GetSubject()), name(d.GetDecidedBy()), d.GetEvidenceIndex())
			}
			for _, v := range resp.GetRevocations() {
				printRevocation(cmd, v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d decisions recorded, %d rows without a decision skipped\n", len(resp.GetDecisions()), resp.GetSkipped())
			return nil
		},
	}
	f.registerConnection(cmd)
	idt.register(cmd)
	cmd.Flags().StringVar(&audit, "audit", "", "audit ID the sheet is of (default: the latest succeeded audit)")
	return cmd
}

func newReviewStatus() *cobra.Command {
	var f auditFlags
	var audit string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a campaign's items and decisions, the tracked revocations and the overdue campaigns",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, api, err := reviewClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.GetReviewStatus(cmd.Context(), &secureauditv1.GetReviewStatusRequest{AuditId: audit})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			cp := resp.GetCampaign()
			fmt.Fprintf(out, "campaign of audit %s on %s, due %s: %d items, %d decided, %d pending, %d revoked, %d verified, %d still present\n", cp.GetAuditId(), cp.GetCluster(),
				cp.GetDueAt().AsTime().Format(time.DateOnly), cp.GetItems(), cp.GetDecided(), cp.GetPending(), cp.GetRevoked(), cp.GetVerified(), cp.GetStillPresent())
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tSUBJECT\tDECISION\tDECIDED BY\tJUSTIFICATION")
			for _, it := range cp.GetItemStates() {
				dec, by := "pending", "-"
				if d := it.GetDecision(); d != nil {
					dec, by = decisionName(d.GetDecision()), name(d.GetDecidedBy())
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", it.GetKey(), subjectArg(it.GetSubject()), dec, by, it.GetDecision().GetJustification())
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(resp.GetRevocations()) > 0 {
				fmt.Fprintln(out, "\nrevocations:")
				w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tSTATE\tSUBJECT\tBINDINGS\tSURVIVED\tSEVERITY\tDECIDED BY")
				for _, v := range resp.GetRevocations() {
					var bs []string
					for _, b := range v.GetBindings() {
						bs = append(bs, bindingArg(b))
					}
					sev := "-"
					if v.GetState() == secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT {
						sev = strings.ToLower(strings.TrimPrefix(v.GetSeverity().String(), "SEVERITY_"))
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", v.GetId(), strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(v.GetState().String(), "REVOCATION_STATE_"), "_", " ")),
						subjectArg(v.GetSubject()), strings.Join(bs, ", "), v.GetAuditsSurvived(), sev, name(v.GetDecidedBy()))
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			for _, o := range resp.GetOverdue() {
				var pending []string
				for _, it := range o.GetItemStates() {
					if it.GetDecision() == nil {
						pending = append(pending, it.GetKey()+" "+subjectArg(it.GetSubject()))
					}
				}
				fmt.Fprintf(out, "ALERT: the campaign of audit %s was due %s and %d of its %d items are undecided: %s\n", o.GetAuditId(), o.GetDueAt().AsTime().Format(time.DateOnly),
					o.GetPending(), o.GetItems(), strings.Join(pending, ", "))
			}
			return nil
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringVar(&audit, "audit", "", "audit ID of the campaign (default: the latest succeeded audit)")
	return cmd
}
