// Package stack starts the five SecureAudit services as separate local
// processes with a fresh development CA, waits until each is serving, and
// stops them cleanly.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

// Config says what to start.
type Config struct {
	// BinDir holds the service binaries (rbac-agent, entra-agent, ...).
	BinDir string
	// StateDir receives the PKI, the database, logs and the endpoint file.
	StateDir string
	// Snapshot is a file or directory of Kubernetes objects; or Kubeconfig.
	Snapshot   string
	Kubeconfig string
	Context    string
	// ClusterName names the cluster in the report; the rbac-agent's default
	// (the snapshot's base name, or the kubeconfig context) when empty.
	ClusterName string
	// Directory is an Entra directory snapshot. EntraLive resolves in the
	// live tenant instead (the entra-agent's -live, with the Azure
	// credential and endpoints from the environment), with the role
	// assignments of ClusterResourceID. No entra-agent runs without either.
	Directory         string
	EntraLive         bool
	ClusterResourceID string
	// ServerVersion is the Kubernetes version of the cluster a Snapshot
	// comes from (the rbac-agent's -server-version); empty: the Nodes'
	// kubelet version, else the risk-agent's stated default.
	ServerVersion string
	// OneShot says the stack serves one audit (scan): the rbac-agent lists
	// a live cluster once for it instead of keeping a watch cache.
	OneShot bool
	// Host is the loopback address to listen on.
	Host string
	// ReadyTimeout bounds the wait for every service to serve.
	ReadyTimeout time.Duration
}

// Service is one started process.
type Service struct {
	Name    string
	Addr    string
	LogPath string
	// PIDPath is the file holding the process ID of the current process.
	PIDPath string
	// Restarts counts the times Supervise started the service again.
	Restarts int
	cmd      *exec.Cmd
	args     []string
	addrFile string
	started  time.Time
	done     chan struct{}
	err      error
	peakRSS  int64
}

// Stack is the running set of services.
type Stack struct {
	Services []*Service
	PKIDir   string
	cfg      Config
}

// EndpointFile is where Start records the orchestrator's address, under the state directory.
const EndpointFile = "orchestrator.addr"

// Start creates the PKI and starts the services, agents first. On error every
// started process is stopped again.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if (cfg.Snapshot == "") == (cfg.Kubeconfig == "") {
		return nil, errors.New("give exactly one of --snapshot and --kubeconfig")
	}
	if cfg.Directory != "" && cfg.EntraLive {
		return nil, errors.New("give at most one of --directory and --entra-live")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	for _, p := range []*string{&cfg.Snapshot, &cfg.Kubeconfig, &cfg.Directory, &cfg.StateDir, &cfg.BinDir} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if cfg.Snapshot != "" {
		if _, err := os.Stat(cfg.Snapshot); err != nil {
			return nil, fmt.Errorf("--snapshot: %w", err)
		}
	}
	if cfg.Directory != "" {
		if _, err := os.Stat(cfg.Directory); err != nil {
			return nil, fmt.Errorf("--directory: %w", err)
		}
	}
	for _, dir := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "logs")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	s := &Stack{PKIDir: filepath.Join(cfg.StateDir, "pki"), cfg: cfg}
	if _, err := pki.WriteAll(s.PKIDir, identity.Workloads, time.Now()); err != nil {
		return nil, err
	}

	// Each service binds a free port itself and records it in an address
	// file, so that no port is chosen here and lost to another process
	// before the service binds it. The agents start first; the orchestrator
	// is given their addresses once they serve.
	runDir := filepath.Join(cfg.StateDir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", runDir, err)
	}
	addrs := map[string]string{}
	agents := []string{identity.RBACAgent, identity.RiskAgent, identity.ReportAgent}
	if cfg.Directory != "" || cfg.EntraLive {
		agents = append([]string{identity.EntraAgent}, agents...)
	}
	// start launches a service; ready waits until it serves.
	start := func(n string, extra ...string) (*Service, string, error) {
		addrFile := filepath.Join(runDir, n+".addr")
		args := append([]string{"-listen", net.JoinHostPort(cfg.Host, "0"), "-addr-file", addrFile, "-cert-dir", s.PKIDir}, extra...)
		svc := &Service{Name: n, LogPath: filepath.Join(cfg.StateDir, "logs", n+".log"), PIDPath: filepath.Join(runDir, n+".pid"), args: args, addrFile: addrFile}
		if err := s.start(svc, os.O_TRUNC); err != nil {
			return nil, "", err
		}
		s.Services = append(s.Services, svc)
		return svc, addrFile, nil
	}
	ready := func(svc *Service, addrFile string) error {
		var err error
		if svc.Addr, err = s.waitAddr(ctx, svc, addrFile); err != nil {
			return err
		}
		return s.waitReady(ctx, svc)
	}
	// The agents depend on nothing but their files: they start together.
	addrFiles := make([]string, len(agents))
	for i, n := range agents {
		var extra []string
		switch n {
		case identity.RBACAgent:
			if cfg.ClusterName != "" {
				extra = append(extra, "-cluster", cfg.ClusterName)
			}
			if cfg.Snapshot != "" {
				extra = append(extra, "-snapshot", cfg.Snapshot)
				if cfg.ServerVersion != "" {
					extra = append(extra, "-server-version", cfg.ServerVersion)
				}
			} else {
				extra = append(extra, "-kubeconfig", cfg.Kubeconfig)
				if cfg.OneShot {
					extra = append(extra, "-watch=false")
				}
				if cfg.Context != "" {
					extra = append(extra, "-context", cfg.Context)
				}
			}
		case identity.EntraAgent:
			if cfg.EntraLive {
				extra = append(extra, "-live")
				if cfg.ClusterResourceID != "" {
					extra = append(extra, "-cluster-resource-id", cfg.ClusterResourceID)
				}
			} else {
				extra = append(extra, "-directory", cfg.Directory)
			}
		}
		_, addrFile, err := start(n, extra...)
		if err != nil {
			s.Stop(5 * time.Second)
			return nil, err
		}
		addrFiles[i] = addrFile
	}
	errs := make([]error, len(agents))
	var wg sync.WaitGroup
	for i, svc := range s.Services {
		wg.Go(func() { errs[i] = ready(svc, addrFiles[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Stop(5 * time.Second)
		return nil, err
	}
	for _, svc := range s.Services {
		addrs[svc.Name] = svc.Addr
	}
	launch := func(n string, extra ...string) (*Service, error) {
		svc, addrFile, err := start(n, extra...)
		if err != nil {
			return nil, err
		}
		return svc, ready(svc, addrFile)
	}
	// The development cli holds every role of the public API, here only:
	// a deployment's policy is deploy/callers/callers.yaml.
	callers := filepath.Join(cfg.StateDir, "callers.yaml")
	if err := os.WriteFile(callers, []byte(DevelopmentCallers), 0o600); err != nil {
		s.Stop(5 * time.Second)
		return nil, fmt.Errorf("write the development caller policy: %w", err)
	}
	orch, err := launch(identity.Orchestrator,
		"-rbac-agent", addrs[identity.RBACAgent],
		"-entra-agent", addrs[identity.EntraAgent],
		"-risk-agent", addrs[identity.RiskAgent],
		"-report-agent", addrs[identity.ReportAgent],
		"-db", filepath.Join(cfg.StateDir, "secureaudit.db"),
		// A local stack runs the manifests built into the binaries;
		// their approval is recorded as a DEVELOPMENT approval.
		"-approve-bundled-scopes=true",
		"-callers", callers,
		// Without an OpenID Connect issuer, scope approvals on a local
		// stack take a typed name, marked UNVERIFIED (development).
		"-dev-unverified-approvers=true")
	if err != nil {
		s.Stop(5 * time.Second)
		return nil, err
	}
	addrs[identity.Orchestrator] = orch.Addr
	if err := os.WriteFile(filepath.Join(cfg.StateDir, EndpointFile), []byte(addrs[identity.Orchestrator]+"\n"), 0o600); err != nil {
		s.Stop(5 * time.Second)
		return nil, fmt.Errorf("record orchestrator address: %w", err)
	}
	return s, nil
}

// DevelopmentCallers is the caller policy of a local stack: the cli holds
// every role (viewer, operator, approver, auditor).
const DevelopmentCallers = `# DEVELOPMENT caller policy written by secureaudit up/scan: the cli holds every role.
# A deployment uses deploy/callers/callers.yaml (or its own), never this.
apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, operator, approver, auditor]
`

// Orchestrator returns the orchestrator's address.
func (s *Stack) Orchestrator() string {
	for _, svc := range s.Services {
		if svc.Name == identity.Orchestrator {
			return svc.Addr
		}
	}
	return ""
}

// Addr returns the address of the named service, "" when the stack has
// none.
func (s *Stack) Addr(name string) string {
	for _, svc := range s.Services {
		if svc.Name == name {
			return svc.Addr
		}
	}
	return ""
}

// LocalCluster returns the name the stack's rbac-agent presents, when it is
// known beforehand: ClusterName, else the snapshot's base name without its
// extension, else the kubeconfig context given; "" for a kubeconfig's
// current context. A name that ValidClusterName accepts is the agent's
// exactly (its sanitising changes only other names).
func (c Config) LocalCluster() string {
	switch {
	case c.ClusterName != "":
		return c.ClusterName
	case c.Snapshot != "":
		abs, err := filepath.Abs(c.Snapshot)
		if err != nil {
			return ""
		}
		base := filepath.Base(abs)
		return strings.TrimSuffix(base, filepath.Ext(base))
	default:
		return c.Context
	}
}

// dnsLabel is the form of a registered cluster's name (the contract's
// Cluster.name).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidClusterName reports whether name can be registered: a DNS label.
func ValidClusterName(name string) bool { return len(name) <= 63 && dnsLabel.MatchString(name) }

// start starts svc's process with its arguments, its log opened with
// logMode (os.O_TRUNC at first, os.O_APPEND on a restart), and records its
// process ID in svc.PIDPath.
func (s *Stack) start(svc *Service, logMode int) error {
	bin := filepath.Join(s.cfg.BinDir, svc.Name)
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s binary not found in %s (run `make build`): %w", svc.Name, s.cfg.BinDir, err)
	}
	if err := os.Remove(svc.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear %s: %w", svc.addrFile, err)
	}
	logFile, err := os.OpenFile(svc.LogPath, os.O_CREATE|os.O_WRONLY|logMode, 0o600)
	if err != nil {
		return fmt.Errorf("open log for %s: %w", svc.Name, err)
	}
	cmd := exec.Command(bin, svc.args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", svc.Name, err)
	}
	done := make(chan struct{})
	svc.cmd, svc.done, svc.err, svc.started = cmd, done, nil, time.Now()
	go func() {
		err := cmd.Wait()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			svc.peakRSS = max(svc.peakRSS, ru.Maxrss*1024) // Linux reports KiB; the peak over restarts
		}
		logFile.Close()
		svc.err = err
		close(done)
	}()
	if err := os.WriteFile(svc.PIDPath, []byte(fmt.Sprintf("%d\n", cmd.Process.Pid)), 0o600); err != nil {
		return fmt.Errorf("record the process ID of %s: %w", svc.Name, err)
	}
	return nil
}

// waitAddr waits for the service to record the address it serves on.
func (s *Stack) waitAddr(ctx context.Context, svc *Service, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		if data, err := os.ReadFile(path); err == nil {
			if addr := strings.TrimSpace(string(data)); addr != "" {
				return addr, nil
			}
		}
		timer := time.NewTimer(backoff)
		select {
		case <-svc.done:
			timer.Stop()
			return "", fmt.Errorf("%s exited during start-up (%v):\n%s", svc.Name, svc.err, tail(svc.LogPath, 20))
		case <-ctx.Done():
			timer.Stop()
			return "", fmt.Errorf("%s did not start serving within %s; log %s:\n%s", svc.Name, s.cfg.ReadyTimeout, svc.LogPath, tail(svc.LogPath, 20))
		case <-timer.C:
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// waitReady polls the service's health until it serves, it exits, or the
// ready timeout passes.
func (s *Stack) waitReady(ctx context.Context, svc *Service) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	creds, err := rpc.LoadCredentials(pki.Paths(s.PKIDir, identity.CLI))
	if err != nil {
		return err
	}
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	tr, err := telemetry.NewTracing(identity.CLI, "")
	if err != nil {
		return err
	}
	conn, err := rpc.Dial(svc.Addr, identity.ID(svc.Name), rpc.ClientConfig{Credentials: creds, Tracer: tr.Provider, Validator: v})
	if err != nil {
		return err
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	backoff := 20 * time.Millisecond
	for {
		callCtx, callCancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(callCtx, &healthpb.HealthCheckRequest{})
		callCancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		timer := time.NewTimer(backoff)
		select {
		case <-svc.done:
			timer.Stop()
			return fmt.Errorf("%s exited during start-up (%v):\n%s", svc.Name, svc.err, tail(svc.LogPath, 20))
		case <-ctx.Done():
			timer.Stop()
			if status.Code(err) == codes.OK {
				err = ctx.Err()
			}
			return fmt.Errorf("%s at %s not ready after %s: %v; log %s:\n%s", svc.Name, svc.Addr, s.cfg.ReadyTimeout, err, svc.LogPath, tail(svc.LogPath, 20))
		case <-timer.C:
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// Stop sends SIGTERM to the orchestrator (started last), waits for it,
// then stops the agents together; any service still running after the
// timeout is killed.
func (s *Stack) Stop(timeout time.Duration) {
	stop := func(svc *Service) {
		_ = svc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-svc.done:
		case <-time.After(timeout):
			_ = svc.cmd.Process.Kill()
			<-svc.done
		}
	}
	services := s.Services
	if n := len(services); n > 0 && services[n-1].Name == identity.Orchestrator {
		stop(services[n-1])
		services = services[:n-1]
	}
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Go(func() { stop(svc) })
	}
	wg.Wait()
}

// Restart policy of Supervise: a service that exits is started again after
// RestartBackoff, doubled for each exit that follows its previous start by
// less than RestartReset, up to RestartMaxBackoff; after MaxStartFailures
// consecutive restarts that do not come up, Supervise gives up.
const (
	RestartBackoff    = time.Second
	RestartMaxBackoff = 30 * time.Second
	RestartReset      = time.Minute
	MaxStartFailures  = 5
)

// Supervise keeps the stack running until ctx ends: a service that exits
// (crashed, killed, out of memory) is started again on the address it had,
// so the others reach it where they did, with the policy above, and each
// exit and restart is logged to log with the service's restart count. The
// audit a dying agent was serving fails (its calls fail, and the
// orchestrator fails the audit naming the agent); an orchestrator started
// again recovers the audits its store holds unfinished. Supervise returns
// nil when ctx ends, or an error when a service cannot be started again.
// Stop must be called only after Supervise has returned.
func (s *Stack) Supervise(ctx context.Context, log io.Writer) error {
	exited := make(chan *Service, len(s.Services))
	watch := func(svc *Service) {
		done := svc.done
		go func() {
			select {
			case <-done:
				exited <- svc
			case <-ctx.Done():
			}
		}()
	}
	for _, svc := range s.Services {
		watch(svc)
	}
	backoff := map[*Service]time.Duration{}
	for {
		var svc *Service
		select {
		case <-ctx.Done():
			return nil
		case svc = <-exited:
		}
		up := time.Since(svc.started).Round(time.Millisecond)
		wait := RestartBackoff
		if prev, ok := backoff[svc]; ok && up < RestartReset {
			wait = min(2*prev, RestartMaxBackoff)
		}
		for failures := 0; ; failures++ {
			if failures == MaxStartFailures {
				return fmt.Errorf("%s did not come up after %d restarts in a row; log %s:\n%s", svc.Name, failures, svc.LogPath, tail(svc.LogPath, 20))
			}
			backoff[svc] = wait
			fmt.Fprintf(log, "%s exited (%v) after %s; restart %d in %s\n", svc.Name, svc.err, up, svc.Restarts+1, wait)
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-timer.C:
			}
			err := s.restart(ctx, svc)
			if err == nil {
				fmt.Fprintf(log, "%s restarted on %s (restart %d)\n", svc.Name, svc.Addr, svc.Restarts)
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(log, "%s restart %d failed: %v\n", svc.Name, svc.Restarts, err)
			if svc.done != nil {
				select {
				case <-svc.done:
				default:
					// Up but not ready in time: stop it and try again.
					_ = svc.cmd.Process.Kill()
					<-svc.done
				}
			}
			up = time.Since(svc.started).Round(time.Millisecond)
			wait = min(2*wait, RestartMaxBackoff)
		}
		watch(svc)
	}
}

// restart starts svc again on the address it had and waits until it is
// ready.
func (s *Stack) restart(ctx context.Context, svc *Service) error {
	args := slices.Clone(svc.args)
	for i := range args[:len(args)-1] {
		if args[i] == "-listen" {
			args[i+1] = svc.Addr
		}
	}
	svc.args = args
	svc.Restarts++
	if err := s.start(svc, os.O_APPEND); err != nil {
		return err
	}
	addr, err := s.waitAddr(ctx, svc, svc.addrFile)
	if err != nil {
		return err
	}
	if addr != svc.Addr {
		return fmt.Errorf("%s serves on %s, not on %s where the others reach it", svc.Name, addr, svc.Addr)
	}
	return s.waitReady(ctx, svc)
}

// PeakRSS returns the peak resident memory in bytes of a service that has
// exited (the kernel's rusage maxrss), or 0 while it runs.
func (svc *Service) PeakRSS() int64 {
	select {
	case <-svc.done:
		return svc.peakRSS
	default:
		return 0
	}
}

// Tail returns the last lines of a service's log.
func (svc *Service) Tail(n int) string { return tail(svc.LogPath, n) }

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
