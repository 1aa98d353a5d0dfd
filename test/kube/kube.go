// Package kube runs a real Kubernetes API server for integration tests: etcd
// (the Debian package etcd-server) and kube-apiserver, built from the
// k8s.io/kubernetes module at the version matching client-go (the module in
// apiserver/), on free loopback ports in a temporary directory, with RBAC
// authorization, an admin token and ServiceAccount token signing.
//
// The kube-apiserver binary is built once and cached under the repository's
// .cache/kube, keyed by the hash of its module files; `make kube-apiserver`
// builds it ahead of time. Use it from a TestMain:
//
//	func TestMain(m *testing.M) {
//		flag.Parse()
//		if testing.Short() {
//			os.Exit(m.Run()) // the tests skip themselves
//		}
//		srv, err := kube.Start(context.Background())
//		...
//		code := m.Run()
//		srv.Stop()
//		os.Exit(code)
//	}
package kube

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the Kubernetes version of the API server, matching client-go.
const Version = "v1.37.2"

// EnvBinary names an existing kube-apiserver binary to use instead of
// building one.
const EnvBinary = "SECUREAUDIT_KUBE_APISERVER"

// ldflags strip the binary and stamp the version, as the Kubernetes build
// does, so that /version reports Version.
const ldflags = "-s -w" +
	" -X k8s.io/component-base/version.gitVersion=" + Version +
	" -X k8s.io/component-base/version.gitMajor=1" +
	" -X k8s.io/component-base/version.gitMinor=37" +
	" -X k8s.io/component-base/version.gitTreeState=clean" +
	" -X k8s.io/client-go/pkg/version.gitVersion=" + Version

// ErrUnavailable marks a missing prerequisite (etcd, Go); outside CI tests
// skip on it.
var ErrUnavailable = errors.New("kube-apiserver harness unavailable")

// sourceDir returns the directory of this file, test/kube.
func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Binary returns the path of the cached kube-apiserver binary, building it
// first if needed. Concurrent callers (test binaries of several packages)
// build it once: the build holds a lock file.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	src := filepath.Join(sourceDir(), "apiserver")
	h := sha256.New()
	h.Write([]byte(ldflags))
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", fmt.Errorf("kube-apiserver source: %w", err)
		}
		h.Write(data)
	}
	cache := filepath.Join(sourceDir(), "..", "..", ".cache", "kube")
	bin := filepath.Join(cache, "kube-apiserver-"+Version+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("kube-apiserver cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("kube-apiserver cache: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock kube-apiserver cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built by another process while we waited
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: building kube-apiserver needs the go command: %v", ErrUnavailable, err)
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-ldflags="+ldflags, "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build kube-apiserver: %w\n%s", err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build kube-apiserver: %w", err)
	}
	return bin, nil
}

// AggregatorBinary returns the path of the cached clusterrole-aggregation
// controller binary (apiserver/aggregator: the upstream controller code of
// the same k8s.io/kubernetes module), building it first if needed, like
// Binary.
func AggregatorBinary(ctx context.Context) (string, error) {
	src := filepath.Join(sourceDir(), "apiserver")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", filepath.Join("aggregator", "main.go")} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", fmt.Errorf("aggregator source: %w", err)
		}
		h.Write(data)
	}
	cache := filepath.Join(sourceDir(), "..", "..", ".cache", "kube")
	bin := filepath.Join(cache, "clusterrole-aggregation-"+Version+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("aggregator cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, "aggregator.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("aggregator cache: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock aggregator cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: building the aggregation controller needs the go command: %v", ErrUnavailable, err)
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, "./aggregator")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build aggregation controller: %w\n%s", err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build aggregation controller: %w", err)
	}
	return bin, nil
}

// StartAggregation runs the upstream clusterrole-aggregation controller
// against the server as the admin, as kube-controller-manager would, and
// returns a function that stops it. Its log is Dir/aggregator.log.
func (s *Server) StartAggregation(ctx context.Context) (stop func(), err error) {
	bin, err := AggregatorBinary(ctx)
	if err != nil {
		return nil, err
	}
	kc, err := s.Kubeconfig("aggregator", s.AdminToken)
	if err != nil {
		return nil, err
	}
	cmd, err := launch(s.Dir, "aggregator.log", bin, "--kubeconfig="+kc)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // stopping
		close(done)
	}()
	return func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // best effort
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // stuck
			<-done
		}
	}, nil
}

// Server is a running etcd and kube-apiserver. Stop it when done.
type Server struct {
	// Host is the API server's URL, https://127.0.0.1:<port>.
	Host string
	// CAData is the PEM certificate the API server serves with.
	CAData []byte
	// AdminToken authenticates as user "admin" in system:masters.
	AdminToken string
	// Dir is the temporary directory holding etcd's data, the keys and the
	// logs (etcd.log, kube-apiserver.log).
	Dir string

	etcd, apiserver *exec.Cmd
	exited          chan struct{}
	// bin and args start the API server again (RestartAPIServer).
	bin  string
	args []string
}

// Start builds (or finds) kube-apiserver and starts etcd and the API
// server, returning once the API server is ready. Its error wraps
// ErrUnavailable when etcd is not installed.
func Start(ctx context.Context) (*Server, error) {
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/etcd"); serr != nil {
			return nil, fmt.Errorf("%w: etcd not found (apt-get install etcd-server)", ErrUnavailable)
		}
		etcdBin = "/usr/bin/etcd"
	}
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kube-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &Server{Dir: dir}
	if err := s.start(ctx, etcdBin, bin); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, etcdBin, bin string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.etcd, err = launch(s.Dir, "etcd.log", etcdBin,
		"--name=default",
		"--data-dir="+filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--logger=zap",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	if err := s.files(); err != nil {
		return err
	}
	s.Host = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	s.bin, s.args = bin, []string{
		"--etcd-servers=" + clientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + filepath.Join(s.Dir, "certs"),
		"--tls-cert-file=" + filepath.Join(s.Dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(s.Dir, "serving.key"),
		"--token-auth-file=" + filepath.Join(s.Dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--anonymous-auth=false",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(s.Dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(s.Dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--enable-priority-and-fairness=false",
		// No kubernetes Service endpoints: a loopback address is not a
		// valid endpoint, and nothing here needs them.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=1",
	}
	return s.launchAPIServer(ctx)
}

// launchAPIServer starts kube-apiserver with s.args and waits until it is ready.
func (s *Server) launchAPIServer(ctx context.Context) error {
	var err error
	s.apiserver, err = launch(s.Dir, "kube-apiserver.log", s.bin, s.args...)
	if err != nil {
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) {
		cmd.Wait() //nolint:errcheck // the exit is reported by ready
		close(exited)
	}(s.apiserver)
	return s.ready(ctx)
}

// files writes the serving certificate, the ServiceAccount signing key and
// the admin's token file.
func (s *Server) files() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	s.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("serving key: %w", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	s.AdminToken = hex.EncodeToString(token)
	for name, data := range map[string][]byte{
		"serving.crt": s.CAData,
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"tokens.csv":  []byte(s.AdminToken + ",admin,admin-uid,system:masters\n"),
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// ready polls /readyz as the admin until the API server answers 200, it
// exits, or a minute passes.
func (s *Server) ready(ctx context.Context) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAData)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Host+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("readyz: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-s.exited:
			return fmt.Errorf("kube-apiserver exited before it was ready; see %s", s.log("kube-apiserver.log"))
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready (%s): %w; see %s", last, ctx.Err(), s.log("kube-apiserver.log"))
		case <-tick.C:
		}
	}
}

// log returns the last lines of a log file in Dir, for error messages.
func (s *Server) log(name string) string {
	data, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		return name + ": " + err.Error()
	}
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return name + ":\n" + string(data)
}

// Config returns a client configuration authenticating with a bearer token.
func (s *Server) Config(token string) *rest.Config {
	return &rest.Config{
		Host:            s.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CAData},
		QPS:             -1, // no client-side rate limit
	}
}

// Admin returns a clientset authenticated as the admin.
func (s *Server) Admin() (kubernetes.Interface, error) {
	c, err := kubernetes.NewForConfig(s.Config(s.AdminToken))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	return c, nil
}

// Kubeconfig writes a kubeconfig file authenticating with token, for
// processes such as the rbac-agent, and returns its path.
func (s *Server) Kubeconfig(name, token string) (string, error) {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: %s
  context: {cluster: test, user: %s}
current-context: %s
`, s.Host, base64.StdEncoding.EncodeToString(s.CAData), name, token, name, name, name)
	path := filepath.Join(s.Dir, name+".kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}

// StopAPIServer stops the API server (etcd keeps running): its clients'
// connections and watches break. StartAPIServer starts it again on the same
// address.
func (s *Server) StopAPIServer() {
	if s.apiserver == nil || s.apiserver.Process == nil {
		return
	}
	s.apiserver.Process.Signal(syscall.SIGTERM) //nolint:errcheck // best effort
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.apiserver.Process.Kill() //nolint:errcheck // stuck
		<-s.exited
	}
	s.apiserver = nil
}

// StartAPIServer starts the API server again after StopAPIServer, with the
// same flags, address and data, and waits until it is ready.
func (s *Server) StartAPIServer(ctx context.Context) error {
	if s.apiserver != nil {
		return errors.New("the API server is running")
	}
	return s.launchAPIServer(ctx)
}

// Stop stops the API server and etcd and removes Dir.
func (s *Server) Stop() {
	for _, cmd := range []*exec.Cmd{s.apiserver, s.etcd} {
		if cmd == nil || cmd.Process == nil {
			continue
		}
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // best effort
		done := make(chan struct{})
		go func() {
			if cmd == s.apiserver && s.exited != nil {
				<-s.exited
			} else {
				cmd.Wait() //nolint:errcheck // stopping
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // stuck
		}
	}
	if s.Dir != "" {
		os.RemoveAll(s.Dir)
	}
}

// launch starts a process with its output in dir/logName.
func launch(dir, logName, bin string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Kill the children if the test binary dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	return cmd, nil
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
