// Package run holds the lifecycle every SecureAudit binary shares: signal
// handling, the common flags (each also read from a SECUREAUDIT_* environment
// variable), logger, tracing, validator, credentials and scope manifest
// construction, and serving until the context ends.
package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

// Main runs fn with a context that ends on SIGINT or SIGTERM and exits with
// status 1 if it fails. It is for main functions only.
func Main(fn func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	if versionRequested(os.Args[1:]) {
		PrintVersion(os.Stdout, progName())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Stderr)
	err := fn(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName(), err)
		os.Exit(1)
	}
}

// EnvCPUProfile names a directory: when it is set, the binary writes its CPU
// profile there as <program>.<pid>.pprof when it exits (for `go tool pprof`;
// the README's scale section uses it to find where a scan's time goes).
const EnvCPUProfile = "SECUREAUDIT_CPU_PROFILE_DIR"

func startCPUProfile(stderr io.Writer) func() {
	dir := os.Getenv(EnvCPUProfile)
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s.%d.pprof", progName(), os.Getpid()))
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s: CPU profile not written: %v\n", progName(), EnvCPUProfile, err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "%s: CPU profile %s: %v\n", progName(), path, err)
		}
	}
}

func progName() string {
	name := os.Args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// Flags are the settings every service shares.
type Flags struct {
	Listen    string
	CertDir   string
	Cert      string
	Key       string
	CA        string
	Scope     string
	LogLevel  string
	TraceFile string
	// MetricsFile, when set, receives the metrics as JSON lines.
	MetricsFile string
	AddrFile    string
	// TrustDomain, Namespace and IDPath set the workloads' SPIFFE IDs
	// (identity.Configure); empty keeps the environment's or the default.
	TrustDomain string
	Namespace   string
	IDPath      string
	// SPIFFEID, when set, is this workload's own SPIFFE ID instead of the
	// one the trust domain, namespace and ID path give its name: a second
	// instance of a workload under an identity of its own (one entra-agent
	// per Entra tenant, each under its own ServiceAccount). The IDs of the
	// other workloads, which it dials or accepts, are unchanged.
	SPIFFEID string
	// SPIFFESocket, when set, is the SPIFFE Workload API the SVID and trust
	// bundle come from, instead of files.
	SPIFFESocket string
	// HealthListen is the plaintext address of the probes (gRPC health v1,
	// liveness and readiness, nothing else); none when empty.
	HealthListen string
	// CertReload is how often the certificate, key and trust bundle files
	// are looked at for a rotation.
	CertReload time.Duration
	// MaxConnectionAge is how long the server keeps a client connection
	// before asking the client to reconnect (with the current certificates).
	MaxConnectionAge time.Duration
}

// Register adds the common flags to fs. Each flag's default comes from the
// environment variable named in its help text, then from the given default.
func (f *Flags) Register(fs *flag.FlagSet, defaultListen string) {
	str := func(p *string, name, def, usage string) {
		env := EnvName(name)
		fs.StringVar(p, name, EnvOr(env, def), usage+" (env "+env+")")
	}
	fs.Bool("version", false, "print the module version and VCS revision and exit")
	str(&f.Listen, "listen", defaultListen, "address to serve gRPC on")
	str(&f.CertDir, "cert-dir", "", "directory holding <workload>.crt, <workload>.key and ca.crt; overridden by -cert, -key and -ca")
	str(&f.Cert, "cert", "", "PEM X.509-SVID of this workload")
	str(&f.Key, "key", "", "PEM private key of this workload")
	str(&f.CA, "ca", "", "PEM trust bundle of the trust domain")
	str(&f.Scope, "scope", "", "scope manifest file; the manifest built into the binary when empty")
	str(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	str(&f.TraceFile, "trace-file", "", "append finished trace spans to this file as JSON lines (OTLP export: the standard OTEL_* variables)")
	str(&f.MetricsFile, "metrics-file", "", "append OpenTelemetry metrics to this file as JSON lines every 30s (OTLP export: the standard OTEL_* variables; Prometheus: GET /metrics on -health-listen)")
	str(&f.AddrFile, "addr-file", "", "once listening, write the address served on to this file (useful with -listen 127.0.0.1:0)")
	fs.StringVar(&f.TrustDomain, "trust-domain", "", "SPIFFE trust domain of the deployment (env "+identity.EnvTrustDomain+", default "+identity.TrustDomain+")")
	fs.StringVar(&f.Namespace, "namespace", "", "namespace in the workloads' SPIFFE IDs (env "+identity.EnvNamespace+", default "+identity.Namespace+")")
	fs.StringVar(&f.IDPath, "id-path", "", "path of a workload's SPIFFE ID, {namespace} and {workload} replaced (env "+identity.EnvIDPath+", default "+identity.IDPath+")")
	str(&f.SPIFFEID, "spiffe-id", "", "this workload's own SPIFFE ID when it is not the default of its name (a second entra-agent for another tenant under its own ServiceAccount: spiffe://DOMAIN/ns/NS/sa/entra-agent-TENANT); in the trust domain; the other workloads' IDs are unchanged")
	fs.StringVar(&f.SPIFFESocket, "spiffe-endpoint-socket", EnvOr(rpc.EnvSPIFFESocket, ""), "SPIFFE Workload API address (unix:///run/spire/agent/public/api.sock) to take the SVID and trust bundle from, following their rotation, instead of -cert-dir/-cert/-key/-ca (env "+rpc.EnvSPIFFESocket+")")
	str(&f.HealthListen, "health-listen", "", "plaintext address serving only gRPC health v1 for the kubelet's probes (services \"liveness\" and \"readiness\") and the Prometheus metrics (GET /metrics); off when empty")
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		env := EnvName(name)
		if v, ok := os.LookupEnv(env); ok {
			if d, err := time.ParseDuration(v); err == nil {
				def = d
			}
		}
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
	}
	dur(&f.CertReload, "cert-reload-interval", rpc.DefaultReloadInterval, "how often the certificate, key and trust bundle files are read again for a rotation (csi-driver-spiffe, spiffe-helper)")
	dur(&f.MaxConnectionAge, "max-connection-age", rpc.DefaultMaxConnectionAge, "how long a client connection is served before the client is asked to reconnect with its current certificate; shorter than the time between a certificate's renewal and its expiry")
}

// EnvName returns the environment variable for a flag: SECUREAUDIT_ and the
// flag's name in upper case with dashes as underscores.
func EnvName(flagName string) string {
	return "SECUREAUDIT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// EnvOr returns the environment variable's value, or def when it is unset.
func EnvOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// EnvDefaults sets flags from their environment variables (pairs of
// variable and flag name), before the command line overrides them; a value
// the flag refuses is an error naming the variable.
func EnvDefaults(fs *flag.FlagSet, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v := EnvOr(pairs[i], ""); v != "" {
			if err := fs.Set(pairs[i+1], v); err != nil {
				return fmt.Errorf("%s: %w", pairs[i], err)
			}
		}
	}
	return nil
}

// CertFiles resolves the workload's credential paths from the flags.
func (f *Flags) CertFiles(workload string) (pki.Files, error) {
	files := pki.Files{Cert: f.Cert, Key: f.Key, CA: f.CA}
	if f.CertDir != "" {
		def := pki.Paths(f.CertDir, workload)
		if files.Cert == "" {
			files.Cert = def.Cert
		}
		if files.Key == "" {
			files.Key = def.Key
		}
		if files.CA == "" {
			files.CA = def.CA
		}
	}
	if files.Cert == "" || files.Key == "" || files.CA == "" {
		return files, errors.New("no credentials: set -cert-dir, or -cert, -key and -ca (mTLS is required; there is no plaintext mode)")
	}
	return files, nil
}

// Service is a started-up workload: everything its server and clients need.
type Service struct {
	Name    string
	Log     *slog.Logger
	Tracing *telemetry.Tracing
	// Metrics is the meter provider every instrument of the service should
	// use: its metrics are scraped on the health port and exported as the
	// OTEL_* environment and -metrics-file say.
	Metrics   *telemetry.Metrics
	Validator *validation.Validator
	Creds     *rpc.Credentials
	Manifest  *scope.Manifest
	// Callers, when set before Serve, gives the callers of a public API
	// (methods naming a role) their roles.
	Callers *authz.Callers
	// Observer, when set before Serve and Dial, is told of every call the
	// service serves or makes (the scope review's observations).
	Observer rpc.Observer
	// CredentialCheck returns the latest credential self-check the server
	// presents. Setup sets it for workloads whose manifest declares no
	// Kubernetes or Azure credential (they prove they hold no Kubernetes
	// token); the rbac-agent replaces it with its API server check.
	CredentialCheck func() string
	listen          string
	addrFile        string
	maxConnAge      time.Duration
	healthListen    string
	readiness       []rpc.ReadinessCheck
	serving         atomic.Bool
}

// AddReadiness adds a check to readiness: the probes report the service
// ready only while every check passes. The certificate's validity and the
// server listening are always checked.
func (s *Service) AddReadiness(name string, check func(ctx context.Context) error) {
	s.readiness = append(s.readiness, rpc.ReadinessCheck{Name: name, Check: check})
}

// Setup builds a workload from its flags. builtinScope is the manifest compiled
// into the binary, used unless -scope names a file.
func Setup(name string, f Flags, builtinScope []byte, logOut io.Writer) (*Service, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	log := telemetry.NewLogger(logOut, name, level)
	if err := identity.Err(); err != nil {
		return nil, err
	}
	if err := identity.Configure(f.TrustDomain, f.Namespace, f.IDPath); err != nil {
		return nil, err
	}
	scopeData := builtinScope
	if f.Scope != "" {
		data, err := os.ReadFile(f.Scope)
		if err != nil {
			return nil, fmt.Errorf("read scope manifest: %w", err)
		}
		scopeData = data
	}
	manifest, err := scope.Parse(scopeData)
	if err != nil {
		return nil, err
	}
	if manifest.Metadata.Name != name {
		return nil, fmt.Errorf("scope manifest is for %q, not %q", manifest.Metadata.Name, name)
	}
	want := identity.ID(name)
	if f.SPIFFEID != "" {
		id, err := identity.Parse(f.SPIFFEID)
		if err != nil {
			return nil, fmt.Errorf("-spiffe-id: %w", err)
		}
		want = id
		// The manifest (its digest, which approvals name, is of the bytes
		// as read) is the workload's; this instance serves it as its own.
		manifest.Spec.Identity = id.String()
	}
	var creds *rpc.Credentials
	source := ""
	if f.SPIFFESocket != "" {
		ctx, cancel := context.WithTimeout(context.Background(), rpc.WorkloadAPITimeout)
		creds, err = rpc.WorkloadAPICredentials(ctx, f.SPIFFESocket)
		cancel()
		if err != nil {
			return nil, err
		}
		source = "the SVID of the SPIFFE Workload API at " + f.SPIFFESocket
	} else {
		files, err := f.CertFiles(name)
		if err != nil {
			return nil, err
		}
		if creds, err = rpc.LoadCredentials(files); err != nil {
			return nil, err
		}
		source = "certificate " + files.Cert
	}
	if creds.ID() != want {
		_ = creds.Close()
		hint := ""
		if f.SPIFFEID == "" {
			hint = " (an instance under an identity of its own is started with -spiffe-id)"
		}
		return nil, fmt.Errorf("%s is for %s, not %s%s", source, creds.ID(), want, hint)
	}
	creds.SetLogger(log)
	if f.CertReload > 0 {
		creds.SetReloadInterval(f.CertReload)
	}
	if err := creds.Check(time.Now()); err != nil {
		// Not fatal: the files may be rotated in; readiness fails meanwhile.
		log.Error("credentials not usable", "error", err.Error())
	}
	v, err := validation.New(log)
	if err != nil {
		return nil, err
	}
	tr, err := telemetry.NewTracing(name, f.TraceFile)
	if err != nil {
		return nil, err
	}
	metrics, err := telemetry.NewMetrics(name, f.MetricsFile)
	if err != nil {
		_ = tr.Shutdown(context.Background())
		return nil, err
	}
	svc := &Service{Name: name, Log: log, Tracing: tr, Metrics: metrics, Validator: v, Creds: creds, Manifest: manifest, listen: f.Listen, addrFile: f.AddrFile, maxConnAge: f.MaxConnectionAge, healthListen: f.HealthListen}
	switch manifest.Spec.Credential.Kind {
	case "none", "api-key":
		proof := NoKubernetesToken(os.LookupEnv, fileExists).JSON()
		svc.CredentialCheck = func() string { return proof }
	}
	return svc, nil
}

// Close flushes telemetry.
func (s *Service) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Tracing.Shutdown(ctx); err != nil {
		s.Log.Warn("flush traces", telemetry.KeyError, err.Error())
	}
	if err := s.Metrics.Shutdown(ctx); err != nil {
		s.Log.Warn("flush metrics", telemetry.KeyError, err.Error())
	}
	if err := s.Creds.Close(); err != nil {
		s.Log.Warn("close the SPIFFE Workload API client", telemetry.KeyError, err.Error())
	}
}

// Serve builds the server, listens on the configured address and serves
// until ctx ends. Once listening it logs the address and the manifest digest.
func (s *Service) Serve(ctx context.Context, register func(*grpc.Server)) error {
	srv, err := rpc.NewServer(rpc.ServerConfig{
		Credentials:      s.Creds,
		Manifest:         s.Manifest,
		Callers:          s.Callers,
		Logger:           s.Log,
		Tracer:           s.Tracing.Provider,
		Meter:            s.Metrics.Provider,
		Validator:        s.Validator,
		Observer:         s.Observer,
		CredentialCheck:  s.CredentialCheck,
		MaxConnectionAge: s.maxConnAge,
	}, register)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.listen, err)
	}
	s.Log.Info("serving", "address", lis.Addr().String(), "identity", s.Creds.ID().String(), "scope_digest", s.Manifest.Digest())
	if s.addrFile != "" {
		if err := writeAddr(s.addrFile, lis.Addr().String()); err != nil {
			lis.Close()
			return err
		}
	}
	go s.Creds.Watch(ctx)
	if s.healthListen == "" {
		s.serving.Store(true)
		return srv.Serve(ctx, lis)
	}
	hlis, err := net.Listen("tcp", s.healthListen)
	if err != nil {
		lis.Close()
		return fmt.Errorf("listen on -health-listen %s: %w", s.healthListen, err)
	}
	s.Log.Info("serving probes", "address", hlis.Addr().String())
	probes := rpc.NewProbes(s.Log, append([]rpc.ReadinessCheck{
		{Name: "serving", Check: func(context.Context) error {
			if !s.serving.Load() {
				return errors.New("the gRPC server is not serving")
			}
			return nil
		}},
		{Name: "certificate", Check: func(context.Context) error { return s.Creds.Check(time.Now()) }},
	}, s.readiness...)...)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	perr := make(chan error, 1)
	go func() { perr <- rpc.ServeProbes(ctx, hlis, probes, s.Metrics.Handler()) }()
	s.serving.Store(true)
	err = srv.Serve(ctx, lis)
	s.serving.Store(false)
	cancel()
	if e := <-perr; err == nil {
		err = e
	}
	return err
}

// Dial connects to another workload's server.
func (s *Service) Dial(target, workload string) (*grpc.ClientConn, error) {
	return rpc.Dial(target, identity.ID(workload), rpc.ClientConfig{Credentials: s.Creds, Tracer: s.Tracing.Provider, Meter: s.Metrics.Provider, Validator: s.Validator, Observer: s.Observer})
}

// writeAddr records the served address atomically, so that a reader never
// sees a partial address.
func writeAddr(path, addr string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("write -addr-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write -addr-file: %w", err)
	}
	return nil
}
