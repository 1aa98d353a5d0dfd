package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	"secureaudit.dev/cli/login"
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
	cmd.AddCommand(newScopeRequest(), newScopeApprove(), newScopeList(), newScopeReview())
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

// idTokenFlag is the person behind a decision: an OpenID Connect ID token
// read from a file, or obtained by signing in with the device login, never a
// name typed on the command line.
type idTokenFlag struct {
	file   string
	device bool
	login  login.Device
}

func (f *idTokenFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.file, "id-token-file", "", "file holding your OpenID Connect ID token (a JWT from Entra ID or the issuer the orchestrator trusts, -oidc-issuer); the orchestrator verifies it and records you from its claims")
	cmd.Flags().BoolVar(&f.device, "device-login", false, "sign in with the OAuth 2.0 device authorization grant instead of --id-token-file: open the address shown, enter the code, and the ID token the issuer returns is sent (never shown or stored); needs --oidc-issuer and --oidc-client-id")
	cmd.Flags().StringVar(&f.login.Issuer, "oidc-issuer", os.Getenv(login.EnvIssuer), "the OpenID Connect issuer to sign in at with --device-login, as the orchestrator's -oidc-issuer (Entra ID: https://login.microsoftonline.com/TENANT-ID/v2.0) ($"+login.EnvIssuer+")")
	cmd.Flags().StringVar(&f.login.ClientID, "oidc-client-id", os.Getenv(login.EnvClientID), "the application (client) ID to sign in to with --device-login: the orchestrator's -oidc-audience ($"+login.EnvClientID+")")
	cmd.Flags().StringVar(&f.login.CAFile, "oidc-ca-file", os.Getenv(login.EnvCAFile), "PEM certificates to trust for the issuer besides the system's, for a private issuer ($"+login.EnvCAFile+")")
}

// token reads the ID token, or signs in when --device-login is given;
// "-" reads standard input. It returns "" when neither is given.
func (f *idTokenFlag) token(cmd *cobra.Command) (string, error) {
	if f.device {
		if f.file != "" {
			return "", errors.New("--device-login and --id-token-file: give one of them")
		}
		return f.login.IDToken(cmd.Context(), cmd.ErrOrStderr())
	}
	if f.file == "" {
		return "", nil
	}
	var data []byte
	var err error
	if f.file == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<16))
	} else {
		data, err = os.ReadFile(f.file)
	}
	if err != nil {
		return "", fmt.Errorf("--id-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("--id-token-file %s is empty", f.file)
	}
	return tok, nil
}

func newScopeApprove() *cobra.Command {
	var f auditFlags
	var idt idTokenFlag
	var digest, ticket, typed, legacy, reason string
	cmd := &cobra.Command{
		Use:   "approve WORKLOAD --digest sha256:... --ticket ID --id-token-file FILE",
		Short: "Record your approval of one digest of an agent's scope manifest",
		Long: `approve records your approval of a digest someone else requested (secureaudit scope
request): the orchestrator verifies your OpenID Connect ID token and records you from its
claims; it refuses an approval of your own request. On a local development stack
(secureaudit up) --dev-unverified-approver NAME records a typed name instead, marked
UNVERIFIED.`,
		Example: "  secureaudit scope approve rbac-agent --digest sha256:4f2a... --ticket SEC-1234 --reason 'adds pods/list' --id-token-file ~/.secureaudit/id-token",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if legacy != "" {
				return errors.New("--approver is gone: approvals carry the approver's verified identity (--id-token-file FILE); on a local development stack use --dev-unverified-approver NAME")
			}
			tok, err := idt.token(cmd)
			if err != nil {
				return err
			}
			if (tok == "") == (typed == "") {
				return errors.New("give --id-token-file FILE (or, on a local development stack only, --dev-unverified-approver NAME)")
			}
			c, api, err := scopeClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ApproveScope(cmd.Context(), &secureauditv1.ApproveScopeRequest{Workload: args[0], Digest: digest, Approver: typed, IdToken: tok, Ticket: ticket, Reason: reason})
			if err != nil {
				return err
			}
			a := resp.GetApproval()
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s %s by %s (ticket %s) at %s; evidence entry %d\n", a.GetWorkload(), a.GetDigest(), a.GetApprover(), a.GetTicket(),
				a.GetApprovedAt().AsTime().Format(time.RFC3339), a.GetEvidenceIndex())
			if r := a.GetRequestedBy(); r != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "requested by %s\n", person(r))
			}
			return nil
		},
	}
	f.registerConnection(cmd)
	idt.register(cmd)
	cmd.Flags().StringVar(&digest, "digest", "", "manifest digest to approve, as `secureaudit scope list` shows it (required)")
	cmd.Flags().StringVar(&ticket, "ticket", "", "change ticket of the approval (required)")
	cmd.Flags().StringVar(&typed, "dev-unverified-approver", "", "DEVELOPMENT ONLY: record this typed name as the approver, marked UNVERIFIED (accepted only by a local stack, secureaudit up)")
	cmd.Flags().StringVar(&legacy, "approver", "", "removed: use --id-token-file")
	_ = cmd.Flags().MarkHidden("approver")
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	_ = cmd.MarkFlagRequired("digest")
	_ = cmd.MarkFlagRequired("ticket")
	return cmd
}

func newScopeRequest() *cobra.Command {
	var f auditFlags
	var idt idTokenFlag
	var digest, ticket, reason string
	cmd := &cobra.Command{
		Use:   "request WORKLOAD --digest sha256:... --ticket ID --id-token-file FILE",
		Short: "Ask for the approval of one digest of an agent's scope manifest",
		Long: `request records that you (the person your OpenID Connect ID token names) ask for the
approval of a digest. Another person with the approver role approves it (secureaudit scope
approve); you cannot approve your own request.`,
		Example: "  secureaudit scope request rbac-agent --digest sha256:4f2a... --ticket SEC-1234 --reason 'adds pods/list' --id-token-file ~/.secureaudit/id-token",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := idt.token(cmd)
			if err != nil {
				return err
			}
			if tok == "" {
				return errors.New("--id-token-file FILE is required: a request names the person who made it")
			}
			c, api, err := scopeClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.RequestScope(cmd.Context(), &secureauditv1.RequestScopeRequest{Workload: args[0], Digest: digest, Ticket: ticket, Reason: reason, IdToken: tok})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "requested approval of %s %s by %s (ticket %s) at %s; evidence entry %d\n", args[0], digest, person(resp.GetRequestedBy()), ticket,
				resp.GetRequestedAt().AsTime().Format(time.RFC3339), resp.GetEvidenceIndex())
			return nil
		},
	}
	f.registerConnection(cmd)
	idt.register(cmd)
	cmd.Flags().StringVar(&digest, "digest", "", "manifest digest to approve, as `secureaudit scope list` shows it (required)")
	cmd.Flags().StringVar(&ticket, "ticket", "", "change ticket (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	_ = cmd.MarkFlagRequired("digest")
	_ = cmd.MarkFlagRequired("ticket")
	return cmd
}

// person names a verified person: name, e-mail address and who vouches.
func person(d *secureauditv1.Decider) string {
	who := d.GetName()
	if d.GetEmail() != "" {
		who = strings.TrimSpace(who + " <" + d.GetEmail() + ">")
	}
	id := "sub " + d.GetSubject()
	if d.GetObjectId() != "" {
		id = "oid " + d.GetObjectId()
	}
	return fmt.Sprintf("%s (%s, issuer %s)", who, id, d.GetIssuer())
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
	var idt idTokenFlag
	var typed, legacy, out string
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Compare each manifest with the behaviour observed since the last review",
		Long: `review lists, per workload, the methods called, the callers seen and the denials since the
last recorded review, flags what the manifest does not declare, and gives each approval's
age. With --id-token-file the review is recorded in the evidence log under you (the person
your OpenID Connect ID token names, verified by the orchestrator) and a new period starts;
this needs the approver role. On a local development stack --dev-unverified-reviewer NAME
records a typed name instead, marked UNVERIFIED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if legacy != "" {
				return errors.New("--reviewer is gone: a recorded review carries the reviewer's verified identity (--id-token-file FILE); on a local development stack use --dev-unverified-reviewer NAME")
			}
			tok, err := idt.token(cmd)
			if err != nil {
				return err
			}
			if tok != "" && typed != "" {
				return errors.New("give --id-token-file or --dev-unverified-reviewer, not both")
			}
			c, api, err := scopeClient(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := api.ReviewScopes(cmd.Context(), &secureauditv1.ReviewScopesRequest{Reviewer: typed, IdToken: tok})
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
	idt.register(cmd)
	cmd.Flags().StringVar(&typed, "dev-unverified-reviewer", "", "DEVELOPMENT ONLY: record the review under this typed name, marked UNVERIFIED (accepted only by a local stack, secureaudit up)")
	cmd.Flags().StringVar(&legacy, "reviewer", "", "removed: use --id-token-file")
	_ = cmd.Flags().MarkHidden("reviewer")
	cmd.Flags().StringVar(&out, "out", "", "write the report to this file instead of standard output")
	return cmd
}
