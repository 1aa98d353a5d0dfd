// Command rbac-agent serves RBACService: it answers "what grants exist?" by
// reading Roles, ClusterRoles, their bindings, ServiceAccounts, Namespaces and
// the ServiceAccount each workload runs as, from a snapshot file or directory
// or from a live cluster (read-only, never Secrets).
//
// Exactly one source is required:
//
//	rbac-agent -cert-dir pki -snapshot examples/cluster
//	rbac-agent -cert-dir pki -kubeconfig ~/.kube/config -context prod
//	rbac-agent -cert-dir pki -in-cluster -cluster prod-westeurope
//
// Every flag can also be set through its SECUREAUDIT_* environment variable
// (for example SECUREAUDIT_SNAPSHOT), named in -help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/run"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/services/rbac-agent/selfcheck"
	"secureaudit.dev/services/rbac-agent/server"
	"secureaudit.dev/services/rbac-agent/watch"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(identity.RBACAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8441")
	str := func(name, usage string) *string {
		env := run.EnvName(name)
		return fs.String(name, run.EnvOr(env, ""), usage+" (env "+env+")")
	}
	snapshot := str("snapshot", "file or directory of Kubernetes objects (YAML or JSON) to serve")
	kubeconfig := str("kubeconfig", "kubeconfig file of the cluster to read live")
	kubeContext := str("context", "kubeconfig context; the file's current context when empty")
	cluster := str("cluster", "cluster name for the snapshot header; default: the snapshot's base name, or the kubeconfig context, or \"in-cluster\"")
	serverVersion := str("server-version", "Kubernetes version of the cluster a -snapshot comes from, such as v1.34.2, for the authorizer semantics (since 1.35 exec, attach and port-forward need create); default: the highest kubelet version of the snapshot's Nodes, else the risk-agent's stated default. A live cluster's version comes from the API server")
	maxFile := str("max-snapshot-file-size", "largest snapshot file read, in bytes; a larger file is refused, naming it (default "+strconv.Itoa(collect.DefaultMaxFileSize)+")")
	checkIntervalEnv := run.EnvName("self-check-interval")
	checkInterval := fs.Duration("self-check-interval", selfcheck.DefaultInterval, "with a live source: how often the credential self-check (CC6.2) runs again with an unchanged credential; a changed credential is checked at once (env "+checkIntervalEnv+")")
	checkParallelEnv := run.EnvName("self-check-parallelism")
	checkParallel := fs.Int("self-check-parallelism", selfcheck.DefaultParallelism, "with a live source: reviews the credential self-check has in flight at once (env "+checkParallelEnv+")")
	watchEnv := run.EnvName("watch")
	watchCache := fs.Bool("watch", true, "with a live source: keep the cluster in memory with informers (list once, then watch) and serve audits from it; false lists the cluster on every Collect, as a one-shot scan does (env "+watchEnv+")")
	maxStaleEnv := run.EnvName("max-staleness")
	maxStale := fs.Duration("max-staleness", watch.DefaultMaxStaleness, "with -watch: how long a broken watch may leave the cache behind before audits list the cluster directly (env "+maxStaleEnv+")")
	inClusterEnv := run.EnvName("in-cluster")
	inClusterDef, err := strconv.ParseBool(run.EnvOr(inClusterEnv, "false"))
	if err != nil {
		return fmt.Errorf("%s: %w", inClusterEnv, err)
	}
	inCluster := fs.Bool("in-cluster", inClusterDef, "read the cluster this pod runs in (env "+inClusterEnv+")")
	if err := run.EnvDefaults(fs, checkIntervalEnv, "self-check-interval", checkParallelEnv, "self-check-parallelism", watchEnv, "watch", maxStaleEnv, "max-staleness"); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *checkInterval <= 0 || *checkParallel <= 0 || *maxStale <= 0 {
		return errors.New("-self-check-interval, -self-check-parallelism and -max-staleness must be positive")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := oneSource(*snapshot, *kubeconfig, *kubeContext, *inCluster); err != nil {
		return err
	}
	if *serverVersion != "" && !collect.ValidVersion(*serverVersion) {
		return fmt.Errorf("-server-version %q: not a Kubernetes version such as v1.34.2", *serverVersion)
	}
	if *serverVersion != "" && *snapshot == "" {
		return errors.New("-server-version applies to -snapshot only: a live cluster's version comes from the API server")
	}
	maxFileSize := int64(collect.DefaultMaxFileSize)
	if *maxFile != "" {
		n, err := strconv.ParseInt(*maxFile, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("-max-snapshot-file-size %q: want a positive number of bytes", *maxFile)
		}
		maxFileSize = n
	}
	if *cluster != "" && !collect.ValidCluster(*cluster) {
		return fmt.Errorf("-cluster %q: must be 1-253 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", *cluster)
	}

	manifest, err := scopes.Manifest(identity.RBACAgent)
	if err != nil {
		return err
	}
	svc, err := run.Setup(identity.RBACAgent, common, manifest, stderr)
	if err != nil {
		return err
	}
	defer svc.Close()

	var src server.Source
	if *snapshot != "" {
		name := *cluster
		if name == "" {
			abs, err := filepath.Abs(*snapshot)
			if err != nil {
				return fmt.Errorf("-snapshot: %w", err)
			}
			base := filepath.Base(abs)
			name = collect.SanitizeCluster(strings.TrimSuffix(base, filepath.Ext(base)))
		}
		files := collect.NewFiles(*snapshot, name, svc.Validator, collect.WithServerVersion(*serverVersion), collect.WithMaxFileSize(maxFileSize))
		// The snapshot is read again on every Collect, so a broken one may
		// still be fixed; say so now rather than at the first audit. The
		// first load runs beside serving: a Collect meanwhile waits for it
		// and gets its parse, unless the files changed.
		tracked := &trackedSource{src: files}
		tracked.last.Store(&loadResult{err: errors.New("the snapshot is not loaded yet")})
		go func() {
			if _, err := tracked.Load(ctx); err != nil && ctx.Err() == nil {
				svc.Log.WarnContext(ctx, "snapshot does not load; Collect will fail until it is fixed", telemetry.KeyError, err.Error())
			}
		}()
		// Ready once the snapshot loaded; not ready while its latest load
		// failed (a fixed file is read again at the next Collect).
		svc.AddReadiness("snapshot", func(context.Context) error { return tracked.last.Load().err })
		src = tracked
		svc.CredentialCheck = func() string { return selfcheck.NotApplicable }
	} else {
		client, ep, err := kubeclient.Connect(*kubeconfig, *kubeContext, *inCluster)
		if err != nil {
			return err
		}
		name := *cluster
		if name == "" {
			name = collect.SanitizeCluster(ep.Context)
		}
		live := collect.NewLive(client, name, ep.Host, svc.Validator)
		probe := func(ctx context.Context) error {
			if err := client.Interface().Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
				return fmt.Errorf("the API server at %s does not answer: %w", ep.Host, err)
			}
			return nil
		}
		if *watchCache {
			// Audits read the informers' cache; they list directly
			// (and say so in the log) until it synced or while a watch
			// has been closed for longer than -max-staleness.
			wc, err := watch.New(client.Interface(), svc.Log, watch.WithMaxStaleness(*maxStale))
			if err != nil {
				return err
			}
			go wc.Run(ctx) //nolint:errcheck // returns when ctx ends
			src = collect.NewCached(wc, client, live, svc.Log, name, ep.Host, svc.Validator)
			// Ready while the cache is fresh (no request), else while
			// the API server answers.
			svc.AddReadiness("api-server", func(ctx context.Context) error {
				if wc.Fresh() == nil {
					return nil
				}
				return probe(ctx)
			})
		} else {
			src = live
			// Ready while the API server answers.
			svc.AddReadiness("api-server", probe)
		}
		// CC6.2: prove at the API server that the credential is no broader
		// than declared, beside serving: the check runs now, every
		// -self-check-interval and when the credential's files change, and
		// each response presents its latest result (none before the first).
		monitor := selfcheck.NewMonitor(client.Interface(), selfcheck.RulesFromManifest(svc.Manifest.Spec.Permissions), svc.Log,
			selfcheck.WithInterval(*checkInterval),
			selfcheck.WithCredential(selfcheck.FilesFingerprint(ep.CredentialFiles...), selfcheck.DefaultPoll),
			selfcheck.WithCheckOptions(selfcheck.WithParallelism(*checkParallel)))
		go monitor.Run(ctx) //nolint:errcheck // returns when ctx ends
		svc.CredentialCheck = monitor.Presented
		// Ready once the first check has a result (pass, violation or
		// error), so that the orchestrator's first admission records it
		// as before; it runs beside the cache's first list and the other
		// services' start, in parallel, and never again before serving.
		svc.AddReadiness("credential-self-check", func(context.Context) error {
			if monitor.Presented() == "" {
				return errors.New("the credential self-check has not finished yet")
			}
			return nil
		})
	}
	srv := server.New(svc.Log, src)
	return svc.Serve(ctx, func(s *grpc.Server) { secureauditv1.RegisterRBACServiceServer(s, srv) })
}

// trackedSource remembers the outcome of the latest load, for readiness.
type trackedSource struct {
	src  server.Source
	last atomic.Pointer[loadResult]
}

type loadResult struct{ err error }

func (t *trackedSource) Load(ctx context.Context) (*collect.Snapshot, error) {
	snap, err := t.src.Load(ctx)
	if ctx.Err() == nil {
		t.last.Store(&loadResult{err: err})
	}
	return snap, err
}

// oneSource checks that exactly one source is configured.
func oneSource(snapshot, kubeconfig, kubeContext string, inCluster bool) error {
	n := 0
	for _, set := range []bool{snapshot != "", kubeconfig != "", inCluster} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("no source: set one of -snapshot PATH, -kubeconfig PATH or -in-cluster")
	case n > 1:
		return errors.New("more than one source: set only one of -snapshot, -kubeconfig and -in-cluster")
	case kubeContext != "" && kubeconfig == "":
		return errors.New("-context needs -kubeconfig")
	}
	return nil
}
