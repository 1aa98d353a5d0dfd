// Command entra-agent serves EntraService: it answers "who are these
// principals?" for the users, groups and workload identities an RBAC
// snapshot names, from a directory snapshot file or from a live Entra
// tenant (Microsoft Graph and Azure Resource Manager). Only the
// orchestrator may call it.
//
// `entra-agent export -out FILE ...` resolves principals in the live tenant
// and writes what it found as a directory snapshot file, so that an audit
// can be reproduced offline; `secureaudit entra export` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"google.golang.org/grpc"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/run"
	"secureaudit.dev/services/entra-agent/directory"
	"secureaudit.dev/services/entra-agent/tenant"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "export" {
		return export(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet(identity.EntraAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8442")
	dirEnv := run.EnvName("directory")
	directoryPath := fs.String("directory", run.EnvOr(dirEnv, ""),
		"directory snapshot file (protojson of secureaudit.v1.DirectorySnapshot); without it or -live, Resolve fails with FailedPrecondition (env "+dirEnv+")")
	var live liveFlags
	live.register(fs)
	checkIntervalEnv := run.EnvName("self-check-interval")
	checkInterval := fs.Duration("self-check-interval", tenant.DefaultCheckInterval,
		"with -live: how often the credential self-check (CC6.2) runs again at every AKS cluster the agent has read (env "+checkIntervalEnv+")")
	// The environment sets the default; a flag on the command line wins.
	if err := run.EnvDefaults(fs, checkIntervalEnv, "self-check-interval"); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *checkInterval <= 0 {
		return fmt.Errorf("-self-check-interval must be positive")
	}
	if *directoryPath != "" && live.enabled {
		return fmt.Errorf("-directory and -live are exclusive: choose the snapshot file or the live tenant")
	}
	// Load the directory first: an invalid file stops the agent before it serves.
	var src directory.Source
	if *directoryPath != "" {
		snap, err := directory.Load(*directoryPath)
		if err != nil {
			return err
		}
		src = snap
	}
	manifest, err := scopes.Manifest(identity.EntraAgent)
	if err != nil {
		return err
	}
	svc, err := run.Setup(identity.EntraAgent, common, manifest, stderr)
	if err != nil {
		return err
	}
	defer svc.Close()
	// The credential is checked against the scope manifest, not a list in
	// the code: the Graph permissions it may hold and the ARM operations.
	declared := tenant.DeclaredFrom(svc.Manifest.Spec.Permissions)
	live.cfg.Allowed = declared.Graph
	svc.CredentialCheck = func() string { return notApplicable }
	switch {
	case live.enabled:
		ts, err := live.source(svc.Log)
		if err != nil {
			return err
		}
		svc.Log.Info("live tenant source configured", "graph", live.cfg.GraphURL, "cluster", live.cfg.ClusterID)
		// CC6.2: prove the credential no broader than declared, at the
		// configured cluster before serving, at every cluster a request
		// names when it is first resolved, and at all of them again every
		// -self-check-interval; the worst result is presented to the
		// orchestrator, which records an alert on a violation (and refuses
		// audits with -refuse-on-credential-violation).
		monitor := tenant.NewMonitor(ts, declared, svc.Log, tenant.WithCheckInterval(*checkInterval))
		monitor.Check(ctx)
		go monitor.Run(ctx) //nolint:errcheck // returns when ctx ends
		svc.CredentialCheck = monitor.Presented
		src = monitor
	case src == nil:
		svc.Log.Warn("no directory source configured; Resolve fails with FailedPrecondition until one is")
	default:
		svc.Log.Info("directory snapshot loaded", "directory", *directoryPath)
	}
	srv := directory.NewServer(svc.Log, src)
	return svc.Serve(ctx, func(s *grpc.Server) { secureauditv1.RegisterEntraServiceServer(s, srv) })
}

// notApplicable is presented when the agent reads a directory snapshot and
// uses no Entra or Azure credential.
const notApplicable = `{"outcome":"not-applicable","summary":"directory snapshot: no Entra or Azure credential in use"}`

// liveFlags configure the live tenant source.
type liveFlags struct {
	enabled bool
	cfg     tenant.Config
	// noInstanceDiscovery skips Entra instance discovery, for private or
	// disconnected clouds whose authority host (AZURE_AUTHORITY_HOST)
	// login.microsoftonline.com does not know.
	noInstanceDiscovery bool
	// subscriptions are -subscriptions, comma-separated.
	subscriptions string
}

func (l *liveFlags) register(fs *flag.FlagSet) {
	env := func(name string) string { return run.EnvName(name) }
	fs.BoolVar(&l.enabled, "live", run.EnvOr(env("live"), "") == "true",
		"resolve through Microsoft Graph and Azure Resource Manager with the Azure credential of the environment (env "+env("live")+")")
	fs.StringVar(&l.cfg.ClusterID, "cluster-resource-id", run.EnvOr(env("cluster-resource-id"), ""),
		"the AKS cluster's ARM resource ID; role assignments on it, its resource group and subscription are reported; a request naming another cluster (the orchestrator sends a registered cluster's) is answered about that one (env "+env("cluster-resource-id")+")")
	fs.StringVar(&l.subscriptions, "subscriptions", run.EnvOr(env("subscriptions"), ""),
		"the Azure subscription IDs (comma-separated) whose AKS clusters a request may name; a request naming a cluster in another is refused with InvalidArgument; empty: any, bounded only by the credential's Azure role assignments (env "+env("subscriptions")+")")
	fs.StringVar(&l.cfg.GraphURL, "graph-url", run.EnvOr(env("graph-url"), tenant.DefaultGraphURL), "Microsoft Graph base URL (env "+env("graph-url")+")")
	fs.StringVar(&l.cfg.ARMURL, "arm-url", run.EnvOr(env("arm-url"), tenant.DefaultARMURL), "Azure Resource Manager endpoint (env "+env("arm-url")+")")
	fs.IntVar(&l.cfg.Concurrency, "concurrency", tenant.DefaultConcurrency, "Graph and ARM requests in flight at most")
	fs.IntVar(&l.cfg.MaxRetries, "max-retries", tenant.DefaultMaxRetries, "retries of a throttled or unavailable request (at most 10)")
	fs.BoolVar(&l.noInstanceDiscovery, "disable-instance-discovery", run.EnvOr(env("disable-instance-discovery"), "") == "true",
		"do not ask login.microsoftonline.com to validate the authority host (AZURE_AUTHORITY_HOST); only for private or disconnected clouds such as Azure Stack (env "+env("disable-instance-discovery")+")")
}

// source builds the live source with the environment's credential: Azure
// workload identity in a pod that has it (AZURE_FEDERATED_TOKEN_FILE), the
// default credential chain elsewhere (environment, managed identity, Azure
// CLI).
func (l *liveFlags) source(log *slog.Logger) (*tenant.Source, error) {
	var cred azcore.TokenCredential
	var err error
	if os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" {
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{DisableInstanceDiscovery: l.noInstanceDiscovery})
	} else {
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{DisableInstanceDiscovery: l.noInstanceDiscovery})
	}
	if err != nil {
		return nil, fmt.Errorf("azure credential: %w", err)
	}
	cfg := l.cfg
	for _, sub := range strings.Split(l.subscriptions, ",") {
		if sub = strings.TrimSpace(sub); sub != "" {
			cfg.Subscriptions = append(cfg.Subscriptions, sub)
		}
	}
	return tenant.New(log, cred, cfg)
}

// export resolves the principals named on the command line in the live
// tenant and writes a directory snapshot file.
func export(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("entra-agent export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory snapshot file to write (required)")
	tenantID := fs.String("tenant-id", os.Getenv("AZURE_TENANT_ID"), "the tenant's ID, recorded in the snapshot (default: AZURE_TENANT_ID, else the token's tid)")
	allowPartial := fs.Bool("allow-partial", false, "write the snapshot even when lookups failed (they are listed on stderr)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	var groups, users, clients listFlag
	fs.Var(&groups, "group", "Entra group object ID (repeatable)")
	fs.Var(&users, "user", "user principal name or object ID (repeatable)")
	fs.Var(&clients, "client-id", "workload identity client ID (repeatable)")
	var live liveFlags
	live.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("export: -out is required")
	}
	var ps []*secureauditv1.Principal
	for _, g := range groups {
		ps = append(ps, &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: g})
	}
	for _, u := range users {
		ps = append(ps, &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: u})
	}
	for _, c := range clients {
		ps = append(ps, &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: c})
	}
	if len(ps) == 0 {
		return fmt.Errorf("export: name at least one -group, -user or -client-id")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := live.source(log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	n, err := tenant.Export(ctx, src, ps, *tenantID, *out, *allowPartial, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d users, %d groups, %d service principals, %d role assignments\n", *out, n.Users, n.Groups, n.ServicePrincipals, n.RoleAssignments)
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return fmt.Sprint(*l) }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
