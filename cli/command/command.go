// Package command defines the secureaudit command line: up, audit, scan and
// list. It is the one place where errors become messages for a person.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/cli/client"
	"secureaudit.dev/cli/stack"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/run"
)

// defaultStateDir holds the PKI, database and logs of `secureaudit up`.
const defaultStateDir = ".secureaudit"

// stopTimeout bounds how long each service gets to stop.
const stopTimeout = 10 * time.Second

// New returns the root command.
func New(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "secureaudit",
		Short: "Audit Kubernetes RBAC and the Entra ID identities behind it",
		Long: `secureaudit audits Kubernetes RBAC, resolves the people and workloads behind it in
Microsoft Entra ID, and writes compliance findings and a report a GRC reviewer can sign off.

It runs as five services (rbac-agent, entra-agent, risk-agent, report-agent, orchestrator)
that talk over mutually authenticated gRPC. 'up' starts them locally, 'audit' runs an audit
against a running orchestrator, and 'scan' does both in one step.

` + configHelp + `

` + exitHelp,
		Example: `  # audit the bundled example in one step, writing every report format to out/
  secureaudit scan --snapshot examples/cluster --directory examples/directory.json --out out

  # keep the services running, then audit and fail a pipeline on high findings
  secureaudit up --snapshot examples/cluster --directory examples/directory.json &
  secureaudit audit --fail-on high

  # shell completion
  source <(secureaudit completion bash)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newDiff(), newGet(), newSchedule(), newCluster(), newFleet())
	root.AddCommand(newUp(), newAudit(), newScan(), newList())
	root.AddCommand(newEvidence(), newScope(), newAccept(), newReview(), newControls())
	root.AddCommand(newWhoCan(), newCanI())
	root.AddCommand(newEntra())
	root.AddCommand(newVersion())
	root.Version = run.ReadBuildInfo().String()
	return root
}

// Execute runs the command line and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := New(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "secureaudit: %s\n", explain(err))
		return exitCode(err)
	}
	return ExitOK
}

// explain turns an error into a message for a person.
func explain(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := err.Error()
	switch st.Code() {
	case codes.Unavailable:
		return msg + "\n(is the orchestrator running? start it with `secureaudit up`, or check --orchestrator, " + envOrchestrator + " and the config file)"
	case codes.PermissionDenied, codes.Unauthenticated:
		return msg + "\n(the certificate in --cert-dir must be the cli certificate of the same development CA as the orchestrator)"
	}
	return msg
}

// kubeVersion is a Kubernetes version as --server-version takes it:
// v1.34, v1.34.2, 1.34.2, v1.30.1-gke.1329003, v1.29.3+k3s1.
var kubeVersion = regexp.MustCompile(`^v?[1-9][0-9]*\.[0-9]+(\.[0-9]+)?([-+][0-9A-Za-z.+-]*)?$`)

type stackFlags struct {
	snapshot, kubeconfig, kubeContext, clusterName, directory, stateDir, binDir string
	entraLive                                                                   bool
	clusterResourceID                                                           string
	serverVersion                                                               string
}

func (f *stackFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.snapshot, "snapshot", "", "file or directory of Kubernetes objects (kubectl get -o yaml|json output) to audit")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of a live cluster to audit (read-only)")
	fl.StringVar(&f.kubeContext, "context", "", "kubeconfig context to use with --kubeconfig")
	fl.StringVar(&f.clusterName, "cluster-name", "", "name of the cluster in the report (default: the snapshot's base name, or the kubeconfig context)")
	fl.StringVar(&f.directory, "directory", "", "Entra ID directory snapshot (JSON); without it audits run without identity data")
	fl.BoolVar(&f.entraLive, "entra-live", false, "resolve identities in the live Entra ID tenant through Microsoft Graph (read-only; the entra-agent takes its Azure credential from the environment: AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, a workload identity, or az login)")
	fl.StringVar(&f.clusterResourceID, "cluster-resource-id", "", "with --entra-live: the AKS cluster's Azure resource ID, to read the Azure role assignments that reach it")
	fl.StringVar(&f.binDir, "bin-dir", "", "directory of the service binaries (default: the directory of this executable)")
	fl.StringVar(&f.serverVersion, "server-version", "", "with --snapshot: Kubernetes version of the cluster the snapshot comes from, such as v1.34.2, whose authorizer semantics apply (since 1.35 exec, attach and port-forward need create); default: the highest kubelet version of the snapshot's Nodes, else v1.37, as the report says")
	cmd.MarkFlagsMutuallyExclusive("snapshot", "kubeconfig")
	cmd.MarkFlagsMutuallyExclusive("server-version", "kubeconfig")
	cmd.MarkFlagsMutuallyExclusive("directory", "entra-live")
	cmd.MarkFlagsOneRequired("snapshot", "kubeconfig")
}

func (f *stackFlags) config() (stack.Config, error) {
	if f.serverVersion != "" && !kubeVersion.MatchString(f.serverVersion) {
		return stack.Config{}, fmt.Errorf("--server-version %q: not a Kubernetes version such as v1.34.2", f.serverVersion)
	}
	if f.clusterResourceID != "" && !f.entraLive {
		return stack.Config{}, errors.New("--cluster-resource-id needs --entra-live: role assignments are read from the live tenant")
	}
	bin := f.binDir
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return stack.Config{}, fmt.Errorf("find the service binaries: %w", err)
		}
		bin = filepath.Dir(exe)
	}
	return stack.Config{
		BinDir:            bin,
		StateDir:          f.stateDir,
		Snapshot:          f.snapshot,
		Kubeconfig:        f.kubeconfig,
		Context:           f.kubeContext,
		ClusterName:       f.clusterName,
		Directory:         f.directory,
		EntraLive:         f.entraLive,
		ClusterResourceID: f.clusterResourceID,
		ServerVersion:     f.serverVersion,
	}, nil
}

func newUp() *cobra.Command {
	var f stackFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the five services locally with development certificates",
		Long: `up creates a development CA and one certificate per service (files of mode 0600 under
--state-dir), starts the rbac-agent, entra-agent (with --directory), risk-agent, report-agent
and orchestrator as separate processes on loopback with mTLS, prints their addresses, and
stops them cleanly on Ctrl-C. A service that exits is started again on its address, after 1s
doubling up to 30s while it keeps exiting within a minute; each exit and restart is printed with
the service's restart count (an audit the service was serving fails). Process IDs are in
<state-dir>/run/<service>.pid. Run 'secureaudit audit' from another terminal meanwhile.`,
		Example: "  secureaudit up --snapshot examples/cluster --directory examples/directory.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			st, err := stack.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Stop(stopTimeout)
			for _, svc := range st.Services {
				fmt.Fprintf(out, "%-13s %s  (log %s)\n", svc.Name, svc.Addr, svc.LogPath)
			}
			// The one local cluster, registered like a fleet's (secureaudit
			// cluster list); audits without --cluster work as before.
			msg, err := registerLocal(cmd.Context(), st, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\n%s\n", msg)
			fmt.Fprintf(out, "\ncertificates in %s\nrun `secureaudit audit --state-dir %s` to audit; Ctrl-C stops the services\n", st.PKIDir, cfg.StateDir)
			// A service that exits is started again on its address (the
			// audit it was serving fails); up stops only on Ctrl-C or when
			// a service cannot be started again.
			if err := st.Supervise(cmd.Context(), out); err != nil {
				return err
			}
			fmt.Fprintln(out, "stopping")
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.stateDir, "state-dir", defaultStateDir, "directory for certificates, database and logs")
	return cmd
}

type auditFlags struct {
	orchestrator, certDir, stateDir, out, formats, cluster string
	skipDirectory                                          bool
	failOn                                                 string
	// fs is the command's flag set, to tell flags given from defaults.
	fs *pflag.FlagSet
}

// registerConnection adds the flags that find a running orchestrator.
func (f *auditFlags) registerConnection(cmd *cobra.Command) {
	f.registerConnectionTo(cmd.Flags())
}

// registerConnectionTo adds the connection flags to a flag set.
func (f *auditFlags) registerConnectionTo(fl *pflag.FlagSet) {
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir, "state directory of `secureaudit up` (finds the orchestrator and the cli certificate)")
	fl.StringVar(&f.orchestrator, "orchestrator", "", "orchestrator address (default: the one recorded by `secureaudit up` in --state-dir)")
	fl.StringVar(&f.certDir, "cert-dir", "", "directory with cli.crt, cli.key and ca.crt (default: <state-dir>/pki)")
	f.rememberFlags(fl)
}

// register adds the flags of one audit run.
func (f *auditFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "out", "directory to write the reports to")
	fl.StringVar(&f.formats, "format", client.AllFormats(), "comma-separated report formats: "+client.FormatNames())
	fl.StringVar(&f.cluster, "cluster", "", "cluster to audit: a registered cluster (its own rbac-agent is dialled; secureaudit cluster list), or the name the default rbac-agent must report; the audit fails if the agent reports another")
	fl.BoolVar(&f.skipDirectory, "skip-directory", false, "audit without resolving identities in Entra ID")
	fl.StringVar(&f.failOn, "fail-on", "", "exit with code 3 when the audit finds issues at or above this severity: critical, high, medium, low, info")
	_ = cmd.RegisterFlagCompletionFunc("fail-on", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"critical", "high", "medium", "low", "info"}, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return strings.Split(client.AllFormats(), ","), cobra.ShellCompDirectiveNoFileComp
	})
}

func (f *auditFlags) connection() (addr, certDir string, err error) {
	if err := f.applyDefaults(); err != nil {
		return "", "", err
	}
	addr, certDir = f.orchestrator, f.certDir
	if certDir == "" {
		certDir = filepath.Join(f.stateDir, "pki")
	}
	if addr == "" {
		data, err := os.ReadFile(filepath.Join(f.stateDir, stack.EndpointFile))
		if err != nil {
			return "", "", fmt.Errorf("no orchestrator address: none given (--orchestrator, %s or the config file) and none recorded in %s; start one with `secureaudit up`, or point at a deployed one with --orchestrator HOST:8440 --cert-dir DIR", envOrchestrator, f.stateDir)
		}
		addr = strings.TrimSpace(string(data))
	}
	return addr, certDir, nil
}

// runAudit runs one audit and prints where the reports went.
func runAudit(ctx context.Context, out io.Writer, addr, certDir string, f auditFlags) error {
	formats, err := client.ParseFormats(f.formats)
	if err != nil {
		return usageError(err)
	}
	failOn, err := parseFailOn(f.failOn)
	if err != nil {
		return err
	}
	c, err := client.Dial(addr, certDir)
	if err != nil {
		return err
	}
	defer c.Close()
	show := newProgress(out, isTerminal(out))
	res, err := c.Run(ctx, client.Options{Cluster: f.cluster, SkipDirectory: f.skipDirectory, OutDir: f.out, Formats: formats, Progress: out, OnEvent: show.Event})
	show.Close()
	if err != nil {
		return err
	}
	s := res.Audit.GetSummary()
	fmt.Fprintf(out, "\naudit %s of cluster %s: %d critical, %d high, %d medium, %d low, %d info\n",
		res.Audit.GetId(), res.Audit.GetCluster(), s.GetCritical(), s.GetHigh(), s.GetMedium(), s.GetLow(), s.GetInfo())
	if !res.Audit.GetDirectoryAvailable() {
		fmt.Fprintln(out, "identity data: not available (no Entra ID resolution in this audit)")
	}
	for _, p := range res.Files {
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	return checkFailOn(res.Audit, failOn)
}

func newAudit() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Run an audit on a running orchestrator and write its reports",
		Long: `audit starts an audit on the orchestrator, follows its progress (a bar per stage on a
terminal, one line per event otherwise), and writes the reports to --out: report.md and
report.html for reviewers, report.json, report.sarif (code scanning), report.oscal.json
(OSCAL assessment results) and report.csv (the access review). It exits 0 when the audit
succeeds, whatever it found, unless --fail-on says otherwise.

` + configHelp + `

` + exitHelp,
		Example: `  # against 'secureaudit up' in this directory
  secureaudit audit

  # in a pipeline: only the machine formats, fail on high or critical findings
  secureaudit audit --orchestrator orchestrator.example:8440 --cert-dir /etc/secureaudit/cli \
    --format json,sarif --out results --fail-on high`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, certDir, err := f.connection()
			if err != nil {
				return err
			}
			return runAudit(cmd.Context(), cmd.OutOrStdout(), addr, certDir, f)
		},
	}
	f.registerConnection(cmd)
	f.register(cmd)
	return cmd
}

func newScan() *cobra.Command {
	var (
		sf          stackFlags
		af          auditFlags
		evidenceOut string
	)
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Start the services, run one audit, write the reports, and stop",
		Long: `scan is up, audit and stop in one step: it starts the five services with a fresh
development CA in a temporary directory, audits the snapshot or cluster, writes the reports to
--out (every format by default; --format picks some), and stops the services. It exits 0 when the
audit succeeds, even when there are findings.`,
		Example: "  secureaudit scan --snapshot examples/cluster --directory examples/directory.json --out out",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := client.ParseFormats(af.formats); err != nil {
				return err
			}
			state, err := os.MkdirTemp("", "secureaudit-scan-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(state)
			sf.stateDir = state
			cfg, err := sf.config()
			if err != nil {
				return err
			}
			cfg.OneShot = true
			st, err := stack.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer func() {
				st.Stop(stopTimeout)
				if os.Getenv(envPeakRSS) != "" {
					printPeakRSS(cmd.ErrOrStderr(), st)
				}
			}()
			// The local cluster is registered as up registers it; scan's
			// output stays as it was.
			if _, err = registerLocal(cmd.Context(), st, cfg); err == nil {
				err = runAudit(cmd.Context(), cmd.OutOrStdout(), st.Orchestrator(), st.PKIDir, af)
			}
			if err != nil {
				var logs []string
				for _, svc := range st.Services {
					if t := svc.Tail(5); t != "" {
						logs = append(logs, svc.Name+":\n"+t)
					}
				}
				return fmt.Errorf("%w\n\nlast service log lines:\n%s", err, strings.Join(logs, "\n"))
			}
			if evidenceOut != "" {
				return exportEvidence(cmd.Context(), cmd.OutOrStdout(), st.Orchestrator(), st.PKIDir, time.Time{}, time.Time{}, evidenceOut)
			}
			return nil
		},
	}
	sf.register(cmd)
	af.register(cmd)
	cmd.Flags().StringVar(&evidenceOut, "evidence-out", "", "also export the run's evidence log as a bundle to this file")
	return cmd
}

// envPeakRSS, when set, makes scan print the peak resident memory of each
// service and of itself once the services have stopped: one line
// "peak-rss <process> <bytes>" each, on standard error (the memory benchmark
// in test/e2e reads them).
const envPeakRSS = "SECUREAUDIT_PEAK_RSS"

func printPeakRSS(w io.Writer, st *stack.Stack) {
	for _, svc := range st.Services {
		fmt.Fprintf(w, "peak-rss %s %d\n", svc.Name, svc.PeakRSS())
	}
	var self syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err == nil {
		fmt.Fprintf(w, "peak-rss secureaudit %d\n", self.Maxrss*1024) // Linux reports KiB
	}
}

func newList() *cobra.Command {
	var f auditFlags
	var limit int32
	var output, cluster string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the audits of a running orchestrator, newest first",
		Long:  "list shows the orchestrator's audits, newest first, with their state and counts by severity.\n\n" + configHelp,
		Example: `  secureaudit list
  secureaudit list -o json --limit 100
  SECUREAUDIT_ORCHESTRATOR=orchestrator.example:8440 SECUREAUDIT_CERT_DIR=~/certs secureaudit list -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			resp, err := c.API().ListAudits(cmd.Context(), &secureauditv1.ListAuditsRequest{PageSize: limit, Cluster: cluster})
			if err != nil {
				return err
			}
			return printMessage(cmd.OutOrStdout(), output, resp, func(out io.Writer) error {
				return auditTable(out, resp.GetAudits())
			})
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().Int32Var(&limit, "limit", 20, "number of audits to list (at most 100)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "list only this cluster's audits")
	outputFlag(cmd, &output)
	return cmd
}

// auditTable writes audits as a table.
func auditTable(out io.Writer, audits []*secureauditv1.Audit) error {
	fmt.Fprintf(out, "%-36s  %-20s  %-9s  %-20s  %s\n", "ID", "CREATED", "STATE", "CLUSTER", "CRIT/HIGH/MED/LOW/INFO")
	for _, a := range audits {
		s := a.GetSummary()
		fmt.Fprintf(out, "%-36s  %-20s  %-9s  %-20s  %d/%d/%d/%d/%d\n", a.GetId(), a.GetCreatedAt().AsTime().Format(time.RFC3339),
			strings.TrimPrefix(a.GetState().String(), "AUDIT_STATE_"), a.GetCluster(), s.GetCritical(), s.GetHigh(), s.GetMedium(), s.GetLow(), s.GetInfo())
	}
	return nil
}
