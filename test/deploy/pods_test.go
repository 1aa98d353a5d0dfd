package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"secureaudit.dev/deploy/images"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/services/orchestrator/people/peopletest"
	"secureaudit.dev/test/harness"
	"secureaudit.dev/test/kube"
)

var (
	podsDuration = flag.Duration("pods-duration", 0,
		"TestPodsAsTheKubeletRunsThem: run audits for this long (the issue's soak: -pods-duration 5m -pods-cert-lifetime 2m -pods-rotate-every 30s); "+
			"0 runs until -pods-audits audits and -pods-rotations rotations are done and the first certificates have expired")
	podsLifetime  = flag.Duration("pods-cert-lifetime", 30*time.Second, "lifetime of the certificates the test's CSI driver issues")
	podsRotate    = flag.Duration("pods-rotate-every", 10*time.Second, "how often the test's CSI driver rewrites every pod's certificate")
	podsAudits    = flag.Int("pods-audits", 3, "audits to run at least (with -pods-duration 0)")
	podsRotations = flag.Int("pods-rotations", 3, "rotations to see at least (with -pods-duration 0)")
)

// The adopter's configuration the pods run with: not the defaults, so that
// the chart's values are seen to reach the processes.
const (
	podsNamespace   = "security-tools"
	podsTrustDomain = "prod.example.com"
	// podsCluster is the cluster name an in-cluster rbac-agent reports.
	podsCluster = "in-cluster"
	// podsAudience is the client ID the people's ID tokens are issued to.
	podsAudience = "secureaudit-pods-test"
	csiDriver    = "spiffe.csi.cert-manager.io"
)

// TestPodsAsTheKubeletRunsThem renders the Helm chart with an adopter's
// namespace and trust domain, applies its Namespace, ServiceAccounts and RBAC
// to a real API server, and runs each Deployment's container as a local
// process the way the kubelet would:
//
//   - the image's entrypoint (deploy/images) with the container's args and
//     env (the downward API's metadata.namespace resolved), as the pod's
//     runAsUser/runAsGroup with fsGroup as a supplementary group when the
//     test runs as root, in an empty read-only working directory (the
//     image's root is read-only; /tmp stays writable here);
//   - each volumeMount's path mapped to a directory of its own, by rewriting
//     that path prefix in args and env: the csi-driver-spiffe volume gets
//     tls.crt, tls.key and ca.crt written the way the driver (and the
//     kubelet's atomic writer) does, a ..data symlink swapped to a new
//     timestamped directory, files mode 0640 group fs-group; the
//     PersistentVolumeClaim a directory of group fsGroup, setgid;
//   - each pod on a loopback address of its own, so that the manifest's
//     ports are used as they are: 0.0.0.0 in an address becomes the pod's
//     address, and a Service name (rbac-agent:8441) the address and target
//     port of the pod the Service selects, as cluster DNS and kube-proxy do;
//   - the rbac-agent's -in-cluster=true (which reads the token the kubelet
//     mounts at /var/run/secrets/kubernetes.io/serviceaccount, a path this
//     test cannot give a process) becomes -kubeconfig with a token for its
//     ServiceAccount from the API server's TokenRequest, context
//     "in-cluster", so it reads the real API server with the chart's RBAC;
//   - each container's readiness and liveness probes asked on their port and
//     service with a plaintext gRPC health client, every periodSeconds, as
//     the kubelet does; any answer other than SERVING after the pod first
//     became ready is a failure.
//
// The certificates live -pods-cert-lifetime and are rewritten every
// -pods-rotate-every; after each rewrite the test waits until every pod
// presents the new certificate on its API port. The settings added to the
// manifests are the orchestrator's SSL_CERT_FILE (the CA of the test's
// OpenID Connect issuer, which the chart's orchestrator.oidc names) and
// SECUREAUDIT_MAX_CONNECTION_AGE, a third of the lifetime,
// as the README says (shorter than the time between renewal and expiry):
// the manifests' 5m default suits csi-driver-spiffe's one-hour certificates,
// not this test's short ones.
//
// An operator, with the cli identity's certificate, requests the approval of
// the agents' scope manifests and a reviewer approves them, each with an ID
// token (secureaudit scope list, scope request, scope approve); the operator runs audits
// (secureaudit audit) back to back through the orchestrator's Service until
// the run is over; every audit must succeed. At the end each process's peak
// resident memory must be under its container's memory limit.
func TestPodsAsTheKubeletRunsThem(t *testing.T) {
	s := server(t)
	if *podsRotate <= 0 || *podsLifetime <= *podsRotate {
		t.Fatalf("-pods-rotate-every %v must be positive and shorter than -pods-cert-lifetime %v", *podsRotate, *podsLifetime)
	}
	root, err := os.MkdirTemp("", "secureaudit-pods-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// Traversable by the pods' user; each directory below says who may read it.
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	binDir, err := harness.Binaries(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{binDir, filepath.Dir(binDir)} {
		if strings.HasPrefix(d, root) {
			_ = os.Chmod(d, 0o755)
		}
	}

	// The workloads' SPIFFE IDs in the adopter's trust domain, for the CA here.
	if err := identity.Configure(podsTrustDomain, podsNamespace, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = identity.Configure(identity.TrustDomain, identity.Namespace, identity.IDPath) })

	// The people behind scope requests and approvals sign in at a local
	// OpenID Connect issuer over HTTPS; the orchestrator trusts its CA as
	// it would Entra ID's public one (SSL_CERT_FILE, below).
	iss := peopletest.New(t)
	issuerCA := filepath.Join(root, "oidc-ca")
	if err := os.Mkdir(issuerCA, 0o755); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(iss.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	issuerCA = filepath.Join(issuerCA, "ca.pem")
	if err := os.WriteFile(issuerCA, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"trustDomain": podsTrustDomain,
		"orchestrator": map[string]any{"oidc": map[string]any{"issuer": iss.URL(), "audience": podsAudience}}}
	imagesDir := os.Getenv(envImagesDir)
	if imagesDir != "" {
		tag, err := builtTag(imagesDir)
		if err != nil {
			t.Fatal(err)
		}
		values["image"] = map[string]any{"tag": tag}
		t.Logf("running the entrypoints of the images in %s, tag %s", imagesDir, tag)
	}
	objs := mustRenderHelm(t, podsNamespace, values)
	submit(t, s, objs, false)
	if t.Failed() {
		t.FailNow()
	}
	c := newCluster(t, s, root, binDir, imagesDir, issuerCA, objs)
	defer c.stop(t)

	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	drv := &csi{ca: ca, lifetime: *podsLifetime, cluster: c}
	operatorDir := filepath.Join(root, "operator")
	if err := os.Mkdir(operatorDir, 0o700); err != nil {
		t.Fatal(err)
	}
	drv.operatorDir = operatorDir
	if err := drv.rotate(); err != nil {
		t.Fatal(err)
	}
	firstExpiry := drv.notAfter

	for _, p := range c.pods {
		if err := p.start(c); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	for _, p := range c.pods {
		if err := p.waitReady(ctx); err != nil {
			cancel()
			t.Fatalf("%s: %v\n%s", p.name, err, p.log.String())
		}
	}
	cancel()
	t.Logf("%d pods ready: %s", len(c.pods), c.describe())
	for _, p := range c.pods {
		if err := p.checkIdentity(); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	probeCtx, stopProbes := context.WithCancel(context.Background())
	var probes sync.WaitGroup
	for _, p := range c.pods {
		probes.Add(1)
		go func() { defer probes.Done(); p.probeLoop(probeCtx) }()
	}

	op := operator{bin: filepath.Join(binDir, "secureaudit"), certDir: operatorDir, addr: c.serviceAddr(t, "orchestrator", 8440)}
	op.approveScopes(t, ca, iss, filepath.Join(root, "tokens"))

	// The CSI driver's schedule: rewrite every pod's certificates, then wait
	// until every pod presents the new one.
	var rotations atomic.Int32
	rotErr := make(chan error, 1)
	rotCtx, stopRotating := context.WithCancel(context.Background())
	go func() {
		tick := time.NewTicker(*podsRotate)
		defer tick.Stop()
		for {
			select {
			case <-rotCtx.Done():
				rotErr <- nil
				return
			case <-tick.C:
			}
			if err := drv.rotate(); err != nil {
				rotErr <- err
				return
			}
			wctx, cancel := context.WithTimeout(rotCtx, *podsRotate)
			err := c.waitPresented(wctx, drv)
			cancel()
			if err != nil && rotCtx.Err() == nil {
				rotErr <- err
				return
			}
			if rotCtx.Err() == nil {
				rotations.Add(1)
			}
		}
	}()

	start := time.Now()
	done := func() bool {
		if *podsDuration > 0 {
			return time.Since(start) >= *podsDuration
		}
		return int(rotations.Load()) >= *podsRotations && op.audits >= *podsAudits && time.Now().After(firstExpiry)
	}
	var failed []string
	for !done() && len(failed) == 0 {
		select {
		case err := <-rotErr:
			t.Fatalf("rotation: %v", err)
		default:
		}
		if out, err := op.audit(filepath.Join(root, "reports", strconv.Itoa(op.audits))); err != nil {
			failed = append(failed, fmt.Sprintf("audit %d: %v\n%s", op.audits, err, out))
		}
		for _, p := range c.pods {
			if err := p.exitedErr(); err != nil {
				failed = append(failed, fmt.Sprintf("%s exited: %v", p.name, err))
			}
		}
	}
	stopRotating()
	if err := <-rotErr; err != nil {
		t.Errorf("rotation: %v", err)
	}
	stopProbes()
	probes.Wait()
	elapsed := time.Since(start)
	for _, f := range failed {
		t.Error(f)
	}
	var probeFailures []string
	for _, p := range c.pods {
		probeFailures = append(probeFailures, p.probeFailures()...)
	}
	for _, f := range probeFailures {
		t.Error(f)
	}
	var probed int64
	for _, p := range c.pods {
		probed += p.probes.Load()
	}
	t.Logf("%d audits, %d rotations (certificates of %v, the first expired at %s), %d probes in %v; failures: %d audits, %d probes",
		op.audits, rotations.Load(), *podsLifetime, firstExpiry.Format(time.TimeOnly), probed, elapsed.Round(time.Second), len(failed), len(probeFailures))
	if *podsDuration == 0 && (int(rotations.Load()) < *podsRotations || op.audits < *podsAudits) {
		t.Errorf("ran %d audits over %d rotations, want at least %d and %d", op.audits, rotations.Load(), *podsAudits, *podsRotations)
	}
	for _, p := range c.pods {
		peak, err := p.peakRSS()
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		limit := p.container.Resources.Limits.Memory().Value()
		t.Logf("%s: peak resident memory %d MiB (limit %d MiB)", p.name, peak>>20, limit>>20)
		if limit > 0 && peak > limit {
			t.Errorf("%s: peak resident memory %d bytes over the container's limit %d", p.name, peak, limit)
		}
	}
	// The orchestrator's database is on its volume, private to its user.
	for _, p := range c.pods {
		for mountPath, dir := range p.mounts {
			if dir == p.csiDir || p.configMapDirs[dir] {
				continue
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Logf("%s: volume %s holds %v", p.name, mountPath, names)
			info, err := os.Stat(filepath.Join(dir, "secureaudit.db"))
			if err != nil {
				t.Errorf("%s: no database on the volume mounted at %s: %v", p.name, mountPath, err)
				continue
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s: database mode %v, want 0600", p.name, info.Mode().Perm())
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
				if uid, _, _ := p.uid(); int(st.Uid) != uid {
					t.Errorf("%s: database owned by %d, want the pod's user %d", p.name, st.Uid, uid)
				}
			}
		}
	}
	if t.Failed() {
		for _, p := range c.pods {
			t.Logf("--- %s log (tail)\n%s", p.name, tail(p.log.String(), 40))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cluster is the rendered Deployments and Services, run as processes.
type cluster struct {
	api    *kube.Server
	root   string
	binDir string
	// imagesDir, when set, holds the images of make images: each pod runs
	// its image's entrypoint, extracted from the image's layer.
	imagesDir string
	pods      []*pod
	services  map[string]corev1.Service
	// configMaps are the rendered ConfigMaps, by name, for configMap volumes.
	configMaps map[string]corev1.ConfigMap
	// issuerCA is the OpenID Connect issuer's CA, the orchestrator's roots.
	issuerCA string
}

func newCluster(t *testing.T, s *kube.Server, root, binDir, imagesDir, issuerCA string, objs []object) *cluster {
	t.Helper()
	c := &cluster{api: s, root: root, binDir: binDir, imagesDir: imagesDir, issuerCA: issuerCA, services: map[string]corev1.Service{}, configMaps: map[string]corev1.ConfigMap{}}
	used := map[string]bool{}
	for _, o := range objs {
		switch o.str("kind") {
		case "Service":
			var svc corev1.Service
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(runtime.DeepCopyJSON(o), &svc); err != nil {
				t.Fatal(err)
			}
			c.services[svc.Name] = svc
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(runtime.DeepCopyJSON(o), &cm); err != nil {
				t.Fatal(err)
			}
			c.configMaps[cm.Name] = cm
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(runtime.DeepCopyJSON(o), &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Spec.Template.Spec.Containers) != 1 || len(d.Spec.Template.Spec.InitContainers) != 0 {
				t.Fatalf("Deployment %s: this test runs pods of one container", d.Name)
			}
			ip := ""
			for ip == "" || used[ip] {
				ip = fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 2+rand.IntN(250))
			}
			used[ip] = true
			c.pods = append(c.pods, &pod{name: d.Name, namespace: d.Namespace, ip: ip, spec: d.Spec.Template.Spec,
				labels: d.Spec.Template.Labels, container: d.Spec.Template.Spec.Containers[0], mounts: map[string]string{}})
		}
	}
	if len(c.pods) != len(images.Services) {
		t.Fatalf("%d Deployments, want %d", len(c.pods), len(images.Services))
	}
	slices.SortFunc(c.pods, func(a, b *pod) int { return strings.Compare(a.name, b.name) })
	for _, p := range c.pods {
		if err := p.prepare(t, c); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	return c
}

func (c *cluster) describe() string {
	var parts []string
	for _, p := range c.pods {
		parts = append(parts, p.name+"@"+p.ip)
	}
	return strings.Join(parts, ", ")
}

// resolve turns a Service's name and port into the address of the pod it
// selects and the container port its targetPort names, as cluster DNS and
// kube-proxy would; ok is false when name is no Service.
func (c *cluster) resolve(name string, port int) (string, bool, error) {
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".svc.cluster.local"), "."+podsNamespace)
	svc, ok := c.services[name]
	if !ok {
		return "", false, nil
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if int(svc.Spec.Ports[i].Port) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return "", true, fmt.Errorf("Service %s has no port %d", name, port)
	}
	for _, p := range c.pods {
		match := true
		for k, v := range svc.Spec.Selector {
			if p.labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		target := sp.TargetPort
		if target.Type == intstr.Int {
			return net.JoinHostPort(p.ip, target.String()), true, nil
		}
		for _, cp := range p.container.Ports {
			if cp.Name == target.StrVal {
				return net.JoinHostPort(p.ip, strconv.Itoa(int(cp.ContainerPort))), true, nil
			}
		}
		return "", true, fmt.Errorf("Service %s: pod %s has no port named %s", name, p.name, target.StrVal)
	}
	return "", true, fmt.Errorf("Service %s selects no pod", name)
}

func (c *cluster) serviceAddr(t *testing.T, name string, port int) string {
	t.Helper()
	addr, ok, err := c.resolve(name, port)
	if err != nil || !ok {
		t.Fatalf("Service %s:%d: %v", name, port, err)
	}
	return addr
}

// waitPresented waits until every pod presents the driver's latest
// certificate on its API port, in a TLS handshake as the operator's client.
func (c *cluster) waitPresented(ctx context.Context, d *csi) error {
	for _, p := range c.pods {
		want := d.serial(p.name)
		for {
			got, err := p.presented(d)
			if err == nil && got.Cmp(want) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s does not present its rotated certificate (serial %s; presents %v, %v)", p.name, want, got, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func (c *cluster) stop(t *testing.T) {
	for _, p := range c.pods {
		p.stop()
	}
}

// pod is one Deployment's pod run as a process.
type pod struct {
	name, namespace, ip string
	labels              map[string]string
	spec                corev1.PodSpec
	container           corev1.Container
	mounts              map[string]string // mountPath -> directory here
	csiDir              string            // the csi-driver-spiffe volume's directory
	configMapDirs       map[string]bool   // the configMap volumes' directories
	workDir             string
	entrypoint          string   // the program run
	imageEnv            []string // the image config's environment
	args, env           []string

	cmd    *exec.Cmd
	log    syncBuffer
	exited chan struct{}
	err    error

	probes   atomic.Int64
	mu       sync.Mutex
	failures []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (p *pod) uid() (uid, gid, fsGroup int) {
	uid, gid, fsGroup = os.Getuid(), os.Getgid(), os.Getgid()
	if sc := p.spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = int(*sc.RunAsGroup)
		}
		if sc.FSGroup != nil {
			fsGroup = int(*sc.FSGroup)
		}
	}
	return uid, gid, fsGroup
}

// prepare lays out the pod's volumes and resolves its args and env.
func (p *pod) prepare(t *testing.T, c *cluster) error {
	_, _, fsGroup := p.uid()
	base := filepath.Join(c.root, "pods", p.name)
	if err := os.MkdirAll(base, 0o711); err != nil {
		return err
	}
	_ = os.Chmod(filepath.Dir(base), 0o711)
	p.workDir = filepath.Join(base, "root")
	if err := os.Mkdir(p.workDir, 0o555); err != nil {
		return err
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range p.spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range p.container.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			return fmt.Errorf("volumeMount %s names no volume", m.Name)
		}
		dir := filepath.Join(base, "volumes", m.Name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		_ = os.Chmod(filepath.Dir(dir), 0o711)
		switch {
		case v.CSI != nil && v.CSI.Driver == csiDriver:
			g, err := strconv.Atoi(v.CSI.VolumeAttributes["csi.cert-manager.io/fs-group"])
			if err != nil {
				return fmt.Errorf("volume %s: fs-group: %w", v.Name, err)
			}
			if err := chown(dir, 0, g, 0o750); err != nil {
				return err
			}
			p.csiDir = dir
		case v.PersistentVolumeClaim != nil:
			// As the kubelet applies fsGroup: group-owned, setgid.
			if err := chown(dir, 0, fsGroup, 0o770|os.ModeSetgid); err != nil {
				return err
			}
		case v.ConfigMap != nil:
			// Each key a file of mode 0644 (the default), read-only to the pod.
			cm, ok := c.configMaps[v.ConfigMap.Name]
			if !ok {
				return fmt.Errorf("volume %s: no ConfigMap %s in the chart", v.Name, v.ConfigMap.Name)
			}
			for k, data := range cm.Data {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(data), 0o644); err != nil {
					return err
				}
			}
			if err := chown(dir, 0, fsGroup, 0o755); err != nil {
				return err
			}
			if p.configMapDirs == nil {
				p.configMapDirs = map[string]bool{}
			}
			p.configMapDirs[dir] = true
		default:
			return fmt.Errorf("volume %s: a kind this test does not provide", v.Name)
		}
		p.mounts[m.MountPath] = dir
	}
	if p.csiDir == "" {
		return errors.New("no csi-driver-spiffe volume")
	}
	for _, a := range p.container.Args {
		a, err := p.rewrite(t, c, a)
		if err != nil {
			return err
		}
		p.args = append(p.args, a)
	}
	if len(p.container.Command) > 0 {
		return fmt.Errorf("command %v: the images' entrypoint is used; this test runs no other command", p.container.Command)
	}
	// What the kubelet and the image put in every container's environment.
	u, _ := url.Parse(c.api.Host)
	p.env = []string{"HOSTNAME=" + p.name, "KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()}
	if err := p.image(c, base); err != nil {
		return err
	}
	p.env = append(p.env, p.imageEnv...)
	for _, e := range p.container.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			v = p.namespace
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" &&
			e.ValueFrom.ResourceFieldRef.ContainerName == "" && e.ValueFrom.ResourceFieldRef.Divisor.IsZero():
			// As the kubelet resolves it: the limit in bytes.
			limit, ok := p.container.Resources.Limits[corev1.ResourceMemory]
			if !ok {
				return fmt.Errorf("env %s: limits.memory of a container without a memory limit", e.Name)
			}
			v = strconv.FormatInt(limit.Value(), 10)
		default:
			return fmt.Errorf("env %s: only the downward API's metadata.namespace and this container's limits.memory are provided here", e.Name)
		}
		p.env = append(p.env, e.Name+"="+p.rewritePaths(v))
	}
	p.env = append(p.env, "SECUREAUDIT_MAX_CONNECTION_AGE="+(*podsLifetime/3).String())
	if p.name == "orchestrator" && c.issuerCA != "" {
		// The issuer's CA as the process's roots, where a cluster's
		// orchestrator has the public roots Entra ID chains to.
		p.env = append(p.env, "SSL_CERT_FILE="+c.issuerCA)
	}
	return nil
}

func chown(dir string, uid, gid int, mode os.FileMode) error {
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	return os.Chmod(dir, mode)
}

// rewritePaths maps a mounted path to its directory here.
func (p *pod) rewritePaths(v string) string {
	for mountPath, dir := range p.mounts {
		if v == mountPath || strings.HasPrefix(v, mountPath+"/") {
			return dir + strings.TrimPrefix(v, mountPath)
		}
	}
	return v
}

var addrRE = regexp.MustCompile(`^([A-Za-z0-9.-]+):([0-9]+)$`)

// rewrite maps one argument: mounted paths, 0.0.0.0 to the pod's address,
// Service names to the selected pod, -in-cluster to a kubeconfig.
func (p *pod) rewrite(t *testing.T, c *cluster, a string) (string, error) {
	flagName, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	if flagName == "in-cluster" && (!hasValue || value == "true") {
		if p.spec.AutomountServiceAccountToken == nil || !*p.spec.AutomountServiceAccountToken {
			return "", errors.New("-in-cluster without a ServiceAccount token mounted")
		}
		kc, err := c.serviceAccountKubeconfig(p)
		if err != nil {
			return "", err
		}
		return "-kubeconfig=" + kc, nil
	}
	if !hasValue {
		return a, nil
	}
	prefix := a[:len(a)-len(value)]
	if m := addrRE.FindStringSubmatch(value); m != nil {
		port, _ := strconv.Atoi(m[2])
		if m[1] == "0.0.0.0" {
			return prefix + net.JoinHostPort(p.ip, m[2]), nil
		}
		addr, ok, err := c.resolve(m[1], port)
		if err != nil {
			return "", fmt.Errorf("%s: %w", a, err)
		}
		if ok {
			return prefix + addr, nil
		}
	}
	return prefix + p.rewritePaths(value), nil
}

// serviceAccountKubeconfig asks the API server for a token of the
// ServiceAccount, as the kubelet's projected token volume does, and writes
// a kubeconfig whose context is named as rest.InClusterConfig's would be.
func (c *cluster) serviceAccountKubeconfig(p *pod) (string, error) {
	namespace, sa := p.namespace, p.spec.ServiceAccountName
	admin, err := c.api.Admin()
	if err != nil {
		return "", err
	}
	exp := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", namespace, sa, err)
	}
	path, err := c.api.Kubeconfig(podsCluster, tr.Status.Token)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(c.root, "pods", sa+".kubeconfig")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(dst, data, 0o640); err != nil {
		return "", err
	}
	if os.Geteuid() == 0 {
		_, _, fsGroup := p.uid()
		if err := os.Chown(dst, 0, fsGroup); err != nil {
			return "", err
		}
	}
	return dst, nil
}

func (p *pod) start(c *cluster) error {
	cmd := exec.Command(p.entrypoint, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.workDir
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		uid, gid, fsGroup := p.uid()
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(fsGroup)}}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

func (p *pod) exitedErr() error {
	select {
	case <-p.exited:
		if p.err == nil {
			return errors.New("exited with status 0")
		}
		return p.err
	default:
		return nil
	}
}

// envImagesDir names a directory of images built by make images; the pods
// then run the images' entrypoints instead of SECUREAUDIT_BIN_DIR's binaries.
const envImagesDir = "SECUREAUDIT_IMAGES_DIR"

// builtTag is the one tag of the images in dir.
func builtTag(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, images.Services[0].Name+"-*.tar"))
	if err != nil || len(files) != 1 {
		return "", fmt.Errorf("%s=%s: want exactly one %s image, found %v", envImagesDir, dir, images.Services[0].Name, files)
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(files[0]), images.Services[0].Name+"-"), ".tar"), nil
}

// image resolves what the container's image runs: with c.imagesDir, the
// image the container names is read, its user checked against the pod's
// and its entrypoint extracted from its layer; otherwise the binary of the
// same name in c.binDir stands in, with the environment every image sets.
func (p *pod) image(c *cluster, base string) error {
	var svc *images.Service
	for i, s := range images.Services {
		if s.Name == p.name {
			svc = &images.Services[i]
		}
	}
	if svc == nil {
		return fmt.Errorf("no image builds %s", p.name)
	}
	if c.imagesDir == "" {
		p.entrypoint, p.imageEnv = filepath.Join(c.binDir, svc.Name), images.Env
		return nil
	}
	ref := p.container.Image
	tag := ref[strings.LastIndexByte(ref, ':')+1:]
	file := images.File(c.imagesDir, svc.Name, tag)
	if ref != images.Ref("secureaudit", svc.Name, tag) {
		return fmt.Errorf("image %s is not one make images builds", ref)
	}
	cfg, err := images.Verify(file, *svc, ref)
	if err != nil {
		return err
	}
	uid, gid, _ := p.uid()
	if want := fmt.Sprintf("%d:%d", uid, gid); cfg.Config.User != want {
		return fmt.Errorf("image user %s, the pod runs as %s", cfg.Config.User, want)
	}
	tmp, err := os.MkdirTemp("", "secureaudit-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img, err := images.Read(file, tmp, tag)
	if err != nil {
		return err
	}
	entry := strings.TrimPrefix(cfg.Config.Entrypoint[0], "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return fmt.Errorf("entrypoint /%s not found in %s: %v", entry, file, err)
		}
		if strings.TrimPrefix(hdr.Name, "/") != entry {
			continue
		}
		dir := filepath.Join(base, "image")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		p.entrypoint = filepath.Join(dir, entry)
		f, err := os.OpenFile(p.entrypoint, os.O_CREATE|os.O_WRONLY, os.FileMode(hdr.Mode).Perm())
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if err := errors.Join(err, f.Close()); err != nil {
			return err
		}
		p.imageEnv = cfg.Config.Env
		return nil
	}
}

// stop ends the process as the kubelet does: SIGTERM, then SIGKILL after
// the grace period.
func (p *pod) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

func (p *pod) health(probe *corev1.Probe) (healthpb.HealthClient, func(), error) {
	if probe == nil || probe.GRPC == nil {
		return nil, nil, errors.New("not a gRPC probe")
	}
	conn, err := grpc.NewClient(net.JoinHostPort(p.ip, strconv.Itoa(int(probe.GRPC.Port))), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return healthpb.NewHealthClient(conn), func() { conn.Close() }, nil
}

// waitReady watches the readiness service until it is SERVING (the health
// Watch stream says when the status changes: no polling).
func (p *pod) waitReady(ctx context.Context) error {
	rp := p.container.ReadinessProbe
	client, closeConn, err := p.health(rp)
	if err != nil {
		return fmt.Errorf("readiness probe: %w", err)
	}
	defer closeConn()
	for {
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: *rp.GRPC.Service}, grpc.WaitForReady(true))
		if err == nil {
			for {
				resp, rerr := stream.Recv()
				if rerr != nil {
					err = rerr
					break
				}
				if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
					return nil
				}
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probeLoop asks readiness and liveness every periodSeconds, each within
// timeoutSeconds, as the kubelet's prober does.
func (p *pod) probeLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for kind, probe := range map[string]*corev1.Probe{"readiness": p.container.ReadinessProbe, "liveness": p.container.LivenessProbe} {
		client, closeConn, err := p.health(probe)
		if err != nil {
			p.fail("%s probe: %v", kind, err)
			continue
		}
		period := 10 * time.Second // the kubelet's default
		if probe.PeriodSeconds > 0 {
			period = time.Duration(probe.PeriodSeconds) * time.Second
		}
		timeout := time.Duration(max(probe.TimeoutSeconds, 1)) * time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer closeConn()
			tick := time.NewTicker(period)
			defer tick.Stop()
			for {
				pctx, cancel := context.WithTimeout(ctx, timeout)
				resp, err := client.Check(pctx, &healthpb.HealthCheckRequest{Service: *probe.GRPC.Service})
				cancel()
				if ctx.Err() != nil {
					return
				}
				p.probes.Add(1)
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					p.fail("%s probe on %s:%d at %s: %v %v", kind, p.ip, probe.GRPC.Port, time.Now().Format(time.TimeOnly), resp.GetStatus(), err)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (p *pod) fail(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, p.name+": "+fmt.Sprintf(format, a...))
}

func (p *pod) probeFailures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.failures)
}

// presented is the serial of the certificate the pod presents on its API
// port.
func (p *pod) presented(d *csi) (*big.Int, error) {
	port := 0
	for _, cp := range p.container.Ports {
		if cp.Name == "grpc" {
			port = int(cp.ContainerPort)
		}
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(d.operatorDir, "cli.crt"), filepath.Join(d.operatorDir, "cli.key"))
	if err != nil {
		return nil, err
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", net.JoinHostPort(p.ip, strconv.Itoa(port)),
		&tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // only the presented certificate is read
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// checkIdentity checks the process runs as the pod's runAsUser and
// runAsGroup with fsGroup among its groups (when the test can set them: as
// root) and never as root.
func (p *pod) checkIdentity() error {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return err
	}
	field := func(name string) []string {
		m := regexp.MustCompile(`(?m)^` + name + `:\s*(.*)$`).FindSubmatch(data)
		if m == nil {
			return nil
		}
		return strings.Fields(string(m[1]))
	}
	uid, gid, fsGroup := p.uid()
	if os.Geteuid() != 0 {
		return nil
	}
	if u := field("Uid"); len(u) == 0 || u[0] != strconv.Itoa(uid) || u[0] == "0" {
		return fmt.Errorf("runs as user %v, want %d", u, uid)
	}
	if g := field("Gid"); len(g) == 0 || g[0] != strconv.Itoa(gid) {
		return fmt.Errorf("runs as group %v, want %d", g, gid)
	}
	if g := field("Groups"); !slices.Contains(g, strconv.Itoa(fsGroup)) {
		return fmt.Errorf("supplementary groups %v lack fsGroup %d", g, fsGroup)
	}
	return nil
}

// peakRSS is the process's peak resident set (VmHWM).
func (p *pod) peakRSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0, errors.New("no VmHWM in /proc status")
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, nil
}

// csi issues and rotates certificates as csi-driver-spiffe does: one
// X.509-SVID per pod for its ServiceAccount, written with the kubelet's
// atomic writer layout (a timestamped directory, a ..data symlink swapped to
// it, and tls.crt, tls.key, ca.crt linking through ..data), files readable
// by the volume's fs-group. The operator's certificate (cli) is renewed too.
type csi struct {
	ca          *pki.CA
	lifetime    time.Duration
	cluster     *cluster
	operatorDir string

	mu       sync.Mutex
	serials  map[string]*big.Int
	notAfter time.Time
	n        int
}

func (d *csi) serial(name string) *big.Int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.serials[name]
}

func (d *csi) rotate() error {
	now := time.Now()
	notAfter := now.Add(d.lifetime)
	d.mu.Lock()
	d.n++
	n := d.n
	if d.serials == nil {
		d.serials = map[string]*big.Int{}
	}
	d.mu.Unlock()
	for _, p := range d.cluster.pods {
		certPEM, keyPEM, err := d.ca.IssueValid(p.spec.ServiceAccountName, now, notAfter)
		if err != nil {
			return err
		}
		_, _, g := p.uid()
		for _, v := range p.spec.Volumes {
			if v.CSI != nil {
				g, _ = strconv.Atoi(v.CSI.VolumeAttributes["csi.cert-manager.io/fs-group"])
			}
		}
		if err := atomicWrite(p.csiDir, n, g, map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": d.ca.CertPEM()}); err != nil {
			return err
		}
		block, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.serials[p.name] = cert.SerialNumber
		d.mu.Unlock()
	}
	certPEM, keyPEM, err := d.ca.IssueValid(identity.CLI, now, notAfter)
	if err != nil {
		return err
	}
	files := pki.Paths(d.operatorDir, identity.CLI)
	for path, data := range map[string][]byte{files.Cert: certPEM, files.Key: keyPEM, files.CA: d.ca.CertPEM()} {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	d.mu.Lock()
	if d.notAfter.IsZero() {
		d.notAfter = notAfter
	}
	d.mu.Unlock()
	return nil
}

// atomicWrite is the kubelet's AtomicWriter (which csi-lib uses): the files
// go into a new directory, ..data is swapped to it by a rename, the names
// link through ..data, and the previous directory is removed.
func atomicWrite(dir string, n, gid int, files map[string][]byte) error {
	ts := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), n)
	tsDir := filepath.Join(dir, ts)
	if err := os.Mkdir(tsDir, 0o750); err != nil {
		return err
	}
	for name, data := range files {
		path := filepath.Join(tsDir, name)
		if err := os.WriteFile(path, data, 0o640); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(path, 0, gid); err != nil {
				return err
			}
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(tsDir, 0, gid); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	if old != "" && old != ts {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// operator runs the secureaudit command with the cli identity's certificate
// against the orchestrator's Service.
type operator struct {
	bin, certDir, addr string
	audits             int
}

func (o *operator) run(args ...string) (string, error) {
	cmd := exec.Command(o.bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + o.certDir,
		identity.EnvTrustDomain + "=" + podsTrustDomain, identity.EnvNamespace + "=" + podsNamespace,
		"SECUREAUDIT_ORCHESTRATOR=" + o.addr, "SECUREAUDIT_CERT_DIR=" + o.certDir}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var scopeLine = regexp.MustCompile(`(?m)^(\S+)\s+\S+\s+presents (sha256:[0-9a-f]+)`)

// approveScopes approves what each agent presents, as people reviewing a
// new deployment do: an operator (the cli identity, role operator) requests
// each approval with her ID token; the cli may not approve (no approver
// role); a reviewer (identity reviewer, role approver in the shipped caller
// policy) approves with his, and may not approve his own request.
func (o *operator) approveScopes(t *testing.T, ca *pki.CA, iss *peopletest.Issuer, tokens string) {
	t.Helper()
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	token := func(name, subject string) string {
		path := filepath.Join(tokens, subject)
		if err := os.WriteFile(path, []byte(iss.Sign(t, iss.Valid(podsAudience, subject, name))), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	alice, bob := token("Alice Operator", "alice"), token("Bob Reviewer", "bob")
	// The reviewer's own certificate, in a directory the CLI reads as its own.
	reviewer := &operator{bin: o.bin, certDir: filepath.Join(tokens, "reviewer"), addr: o.addr}
	if err := os.Mkdir(reviewer.certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueValid("reviewer", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	files := pki.Paths(reviewer.certDir, identity.CLI)
	for path, data := range map[string][]byte{files.Cert: certPEM, files.Key: keyPEM, files.CA: ca.CertPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, err := o.run("scope", "list")
	if err != nil {
		t.Fatalf("scope list: %v\n%s", err, out)
	}
	approved := 0
	for _, m := range scopeLine.FindAllStringSubmatch(out, -1) {
		if m[1] == "orchestrator" {
			continue
		}
		args := []string{m[1], "--digest", m[2], "--ticket", "DEPLOY-TEST-1", "--reason", "the chart's manifests as rendered"}
		if rout, err := o.run(append([]string{"scope", "request", "--id-token-file", alice}, args...)...); err != nil {
			t.Fatalf("scope request %s: %v\n%s", m[1], err, rout)
		}
		if aout, err := o.run(append([]string{"scope", "approve", "--id-token-file", bob}, args...)...); err == nil || !strings.Contains(aout, "PermissionDenied") {
			t.Errorf("the cli (operator) approving %s: %v, want PermissionDenied\n%s", m[1], err, aout)
		}
		if approved == 0 {
			if aout, err := reviewer.run(append([]string{"scope", "approve", "--id-token-file", alice}, args...)...); err == nil || !strings.Contains(aout, "separation of duties") {
				t.Errorf("alice approving her own request for %s: %v, want a separation-of-duties refusal\n%s", m[1], err, aout)
			}
		}
		aout, err := reviewer.run(append([]string{"scope", "approve", "--id-token-file", bob}, args...)...)
		if err != nil {
			t.Fatalf("scope approve %s: %v\n%s", m[1], err, aout)
		}
		if !strings.Contains(aout, "by Bob Reviewer <bob@example.com>") || !strings.Contains(aout, "requested by Alice Operator <alice@example.com> (oid oid-alice") {
			t.Errorf("approval of %s does not name both people:\n%s", m[1], aout)
		}
		approved++
	}
	if approved != 4 {
		t.Fatalf("approved %d agents' scopes, want 4; scope list said:\n%s", approved, out)
	}
}

// audit runs one audit and checks its JSON report names the cluster.
func (o *operator) audit(out string) (string, error) {
	o.audits++
	log, err := o.run("audit", "--out", out, "--format", "json", "--cluster", podsCluster)
	if err != nil {
		return log, err
	}
	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		return log, err
	}
	if !bytes.Contains(data, []byte(`"`+podsCluster+`"`)) {
		return log, fmt.Errorf("report.json does not name cluster %s", podsCluster)
	}
	return log, nil
}
