package command

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

var findingIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// newAccept is `secureaudit accept`: risk acceptances, requested by one
// person and approved by another (issue 15).
func newAccept() *cobra.Command {
	cmd := newAcceptRequest("accept (FINDING_ID | --rule RULE --subject KIND:NAME [--binding NAME]) --reason TEXT --ticket ID --expires DATE --id-token-file FILE")
	cmd.Short = "Request, approve and list risk acceptances"
	cmd.Long = `A risk acceptance keeps a finding out of the report's main list, in its "Accepted risks"
section, until it expires or the grant it covers changes (another binding or role, a role that
grants more): then the finding comes back, flagged. One person requests it (secureaudit accept
FINDING_ID ..., or accept request), another person with the approver role approves it
(secureaudit accept approve ID); nobody approves their own request. Both are named by their
verified OpenID Connect ID token (--id-token-file), and each request, approval and expiry is an
entry of the evidence log (CC5.2, CC6.3). An accepted finding still counts against its
controls: not satisfied, risk accepted.`
	cmd.AddCommand(newAcceptRequest("request (FINDING_ID | --rule RULE --subject KIND:NAME [--binding NAME]) --reason TEXT --ticket ID --expires DATE --id-token-file FILE"), newAcceptApprove(), newAcceptList())
	return cmd
}

func acceptClient(f *auditFlags) (*client.Client, secureauditv1.AcceptanceServiceClient, error) {
	addr, certDir, err := f.connection()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.Dial(addr, certDir)
	if err != nil {
		return nil, nil, err
	}
	return c, secureauditv1.NewAcceptanceServiceClient(c.Conn()), nil
}

// parseExpires reads --expires: a date (the acceptance ends at its start,
// 00:00 UTC) or an RFC 3339 time.
func parseExpires(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: give a date (2027-03-31, the acceptance ends at its start, UTC) or an RFC 3339 time", s)
}

func newAcceptRequest(use string) *cobra.Command {
	var f auditFlags
	var idt idTokenFlag
	var rule, subject, binding, reason, ticket, expires string
	cmd := &cobra.Command{
		Use:   use,
		Short: "Ask for the acceptance of a finding of the latest audit",
		Long: `request records that you (the person your OpenID Connect ID token names) ask to accept the
risk of a finding of the latest audit, named by its ID (report.json, the report's finding IDs)
or by --rule and --subject (User:NAME, Group:NAME, ServiceAccount:NAMESPACE/NAME) and, when the
subject holds it through several bindings, --binding (NAME, or NAMESPACE/NAME). The grant as
the audit found it (binding, role, the rules it holds) is recorded with the acceptance.`,
		Example: `  secureaudit accept 0a1b2c3d4e5f6071 --reason 'break-glass group, alerting on use' --ticket SEC-42 --expires 2027-03-31 --id-token-file alice.jwt
  secureaudit accept request --rule RBAC-001 --subject Group:platform-admins --binding ops-admin --reason '...' --ticket SEC-42 --expires 2027-03-31 --id-token-file alice.jwt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &secureauditv1.RequestAcceptanceRequest{RuleId: rule, Subject: subject, Binding: binding, Reason: reason, Ticket: ticket}
			switch {
			case len(args) == 1 && (rule != "" || subject != "" || binding != ""):
				return errors.New("name the finding by its ID or by --rule and --subject, not both")
			case len(args) == 1:
				if !findingIDPattern.MatchString(args[0]) {
					return fmt.Errorf("finding ID %q: 16 lowercase hex digits, as report.json and the report show them", args[0])
				}
				req.FindingId = args[0]
			case rule == "" || subject == "":
				if len(args) == 0 && rule == "" && subject == "" && reason == "" && ticket == "" && expires == "" {
					return cmd.Help()
				}
				return errors.New("name the finding: FINDING_ID, or --rule RULE and --subject KIND:NAME")
			}
			if reason == "" || ticket == "" || expires == "" {
				return errors.New("--reason, --ticket and --expires are required")
			}
			exp, err := parseExpires(expires)
			if err != nil {
				return err
			}
			req.ExpiresAt = timestamppb.New(exp)
			if req.IdToken, err = idt.token(cmd); err != nil {
				return err
			}
			if req.IdToken == "" {
				return errors.New("--id-token-file FILE is required: a request names the person who made it")
			}
			c, api, err := acceptClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.RequestAcceptance(cmd.Context(), req)
			if err != nil {
				return err
			}
			a := resp.GetAcceptance()
			fmt.Fprintf(cmd.OutOrStdout(), "requested acceptance %d of %s (finding %s) for %s through %s on %s until %s by %s (ticket %s); evidence entry %d\n",
				a.GetId(), a.GetRuleId(), a.GetFindingId(), subjectArg(a.GetSubject()), bindingArg(a.GetBinding()), a.GetCluster(), a.GetExpiresAt().AsTime().Format(time.RFC3339),
				person(a.GetRequestedBy()), a.GetTicket(), a.GetRequestEvidenceIndex())
			fmt.Fprintf(cmd.OutOrStdout(), "another person approves it: secureaudit accept approve %d --id-token-file FILE\n", a.GetId())
			return nil
		},
	}
	f.registerConnection(cmd)
	idt.register(cmd)
	cmd.Flags().StringVar(&rule, "rule", "", "rule ID of the finding, such as RBAC-001 (with --subject)")
	cmd.Flags().StringVar(&subject, "subject", "", "subject of the finding: User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME (with --rule)")
	cmd.Flags().StringVar(&binding, "binding", "", "binding of the finding, NAME or NAMESPACE/NAME, when the subject holds it through several")
	cmd.Flags().StringVar(&reason, "reason", "", "why the risk is accepted: the justification the reports show (required)")
	cmd.Flags().StringVar(&ticket, "ticket", "", "ticket of the exception (required)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the acceptance ends: a date (at its start, UTC) or an RFC 3339 time, within a year (required)")
	return cmd
}

func newAcceptApprove() *cobra.Command {
	var f auditFlags
	var idt idTokenFlag
	cmd := &cobra.Command{
		Use:     "approve ID --id-token-file FILE",
		Short:   "Approve a risk acceptance someone else requested",
		Example: "  secureaudit accept approve 3 --id-token-file bob.jwt",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("acceptance ID %q: a positive number, as secureaudit accept list shows it", args[0])
			}
			tok, err := idt.token(cmd)
			if err != nil {
				return err
			}
			if tok == "" {
				return errors.New("--id-token-file FILE is required: an approval names the person who made it")
			}
			c, api, err := acceptClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ApproveAcceptance(cmd.Context(), &secureauditv1.ApproveAcceptanceRequest{Id: id, IdToken: tok})
			if err != nil {
				return err
			}
			a := resp.GetAcceptance()
			fmt.Fprintf(cmd.OutOrStdout(), "approved acceptance %d of %s for %s on %s until %s by %s; evidence entry %d\nrequested by %s\n", a.GetId(), a.GetRuleId(),
				subjectArg(a.GetSubject()), a.GetCluster(), a.GetExpiresAt().AsTime().Format(time.RFC3339), person(a.GetApprovedBy()), a.GetApprovalEvidenceIndex(), person(a.GetRequestedBy()))
			return nil
		},
	}
	f.registerConnection(cmd)
	idt.register(cmd)
	return cmd
}

func newAcceptList() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List risk acceptances: requested, approved and expired",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, api, err := acceptClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ListAcceptances(cmd.Context(), &secureauditv1.ListAcceptancesRequest{})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSTATE\tCLUSTER\tRULE\tSUBJECT\tBINDING\tEXPIRES\tTICKET\tREQUESTED BY\tAPPROVED BY")
			now := time.Now()
			for _, a := range resp.GetAcceptances() {
				state := "requested"
				switch {
				case !a.GetExpiresAt().AsTime().After(now):
					state = "expired"
				case a.GetApprovedBy() != nil:
					state = "approved"
				}
				approved := "-"
				if a.GetApprovedBy() != nil {
					approved = name(a.GetApprovedBy())
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.GetId(), state, a.GetCluster(), a.GetRuleId(), subjectArg(a.GetSubject()), bindingArg(a.GetBinding()),
					a.GetExpiresAt().AsTime().Format(time.DateOnly), a.GetTicket(), name(a.GetRequestedBy()), approved)
			}
			return w.Flush()
		},
	}
	f.registerConnection(cmd)
	return cmd
}

// name is a person's name and e-mail address, short.
func name(d *secureauditv1.Decider) string {
	who := strings.TrimSpace(d.GetName() + " <" + d.GetEmail() + ">")
	if d.GetEmail() == "" {
		who = d.GetName()
	}
	if who == "" {
		who = "sub " + d.GetSubject()
	}
	return who
}

// subjectArg names a subject as --subject takes it.
func subjectArg(s *secureauditv1.SubjectRef) string {
	kind := map[secureauditv1.SubjectKind]string{secureauditv1.SubjectKind_SUBJECT_KIND_USER: "User", secureauditv1.SubjectKind_SUBJECT_KIND_GROUP: "Group", secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT: "ServiceAccount"}[s.GetKind()]
	if s.GetNamespace() != "" {
		return kind + ":" + s.GetNamespace() + "/" + s.GetName()
	}
	return kind + ":" + s.GetName()
}

// bindingArg names a binding as --binding takes it.
func bindingArg(b *secureauditv1.BindingRef) string {
	if b == nil {
		return "-"
	}
	if b.GetNamespace() != "" {
		return b.GetNamespace() + "/" + b.GetName()
	}
	return b.GetName()
}
