package kube_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"secureaudit.dev/deploy/rbac"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/services/risk-agent/synth"
	"secureaudit.dev/test/kube"
)

// BenchmarkLiveAudit measures SecureAudit against a real kube-apiserver
// holding the synthetic cluster of services/risk-agent/synth (seed 1, size
// 10,000: 200 namespaces, ServiceAccounts, Roles, bindings and Pods). On a
// server of its own it loads the cluster, then times
//
//   - scan-cold: `secureaudit scan --kubeconfig K --format json`, five fresh
//     processes, one collection, assessment and report;
//   - audit-warm: `secureaudit audit --format json` on a stack that `secureaudit
//     up --kubeconfig K` keeps running (one audit before the timer). It also
//     reports cpu-s/op, the CPU time (user and system) the five services and
//     the CLI spent per audit, which a loaded machine inflates far less than
//     the wall time, and logs it by process.
//
// Each reports apireq/op, the API server's requests per operation (the
// change of apiserver_request_total on its /metrics, every client, WATCH
// requests included when they start, the API server's own lease updates
// too, the scrape itself not), and logs them by verb and resource.
// The rbac-agent reads with its own ServiceAccount's token (deploy/rbac).
//
// It needs the built binaries: make build, then
// SECUREAUDIT_BIN_DIR=$PWD/bin go test -run X -bench LiveAudit ./test/kube/
func BenchmarkLiveAudit(b *testing.B) {
	if srv == nil {
		b.Skip(skipReason)
	}
	binDir := os.Getenv("SECUREAUDIT_BIN_DIR")
	if binDir == "" {
		b.Skip("SECUREAUDIT_BIN_DIR is not set (make build; SECUREAUDIT_BIN_DIR=$PWD/bin)")
	}
	ctx := context.Background()
	s, err := kube.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	admin, err := s.Admin()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	chunk := synth.Cluster(1, 10_000)
	got, err := loadSynthetic(ctx, admin, chunk)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("synthetic cluster: %d objects generated, %d created, %d already there, %d Pods refused by admission (no such ServiceAccount), in %s",
		synth.Objects(chunk), got.Created, got.Existing, got.Refused, time.Since(start).Round(time.Millisecond))
	kubeconfig, token := agentKubeconfig(b, s, admin)
	if peer := os.Getenv("SECUREAUDIT_BENCH_KUBECONFIG"); peer != "" {
		// An admin kubeconfig for a peer tool run by hand beside the
		// benchmark (test/kube/README.md).
		path, err := s.Kubeconfig("admin", s.AdminToken)
		if err != nil {
			b.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(peer, data, 0o600); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "BenchmarkLiveAudit: the loaded API server's admin kubeconfig is %s\n", peer)
	}
	objects := clusterObjects(b, admin)
	b.Logf("the API server holds %d objects of the kinds the rbac-agent reads", objects)
	secureaudit := filepath.Join(binDir, "secureaudit")

	// The rbac-agent's collection alone, in process, by encoding and page
	// size: what chose protobuf and the page size (collect.defaultPageSize).
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	for _, enc := range []string{"json", "protobuf"} {
		for _, page := range []int64{250, 500, 1000, 2000, 5000} {
			b.Run(fmt.Sprintf("collect-%s-page-%d", enc, page), func(b *testing.B) {
				cfg := s.Config(token)
				kubeclient.Configure(cfg)
				if enc == "json" {
					cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeJSON, ""
				}
				c, err := kubernetes.NewForConfig(cfg)
				if err != nil {
					b.Fatal(err)
				}
				live := collect.NewLive(kubeclient.New(c), "bench", s.Host, v, collect.WithPageSize(page))
				before := requests(b, admin)
				b.ResetTimer()
				for range b.N {
					if _, err := live.Load(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportRequests(b, before, requests(b, admin))
			})
		}
	}

	b.Run("scan-cold", func(b *testing.B) {
		out := b.TempDir()
		before := requests(b, admin)
		b.ResetTimer()
		for range b.N {
			cmd := exec.Command(secureaudit, "scan", "--kubeconfig", kubeconfig, "--format", "json", "--out", out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("scan: %v\n%s", err, o)
			}
		}
		b.StopTimer()
		reportRequests(b, before, requests(b, admin))
		b.ReportMetric(float64(objects), "objects")
	})
	b.Run("audit-warm", func(b *testing.B) {
		state := b.TempDir()
		up := exec.Command(secureaudit, "up", "--kubeconfig", kubeconfig, "--state-dir", state)
		var log bytes.Buffer
		up.Stdout, up.Stderr = &log, &log
		up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := up.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			up.Process.Signal(os.Interrupt) //nolint:errcheck // stopping
			done := make(chan struct{})
			go func() { up.Wait(); close(done) }() //nolint:errcheck // stopping
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				up.Process.Kill() //nolint:errcheck // stuck
			}
		})
		waitFile(b, filepath.Join(state, "orchestrator.addr"), 2*time.Minute, &log)
		out := b.TempDir()
		var cliCPU time.Duration
		audit := func() {
			cmd := exec.Command(secureaudit, "audit", "--state-dir", state, "--format", "json", "--out", out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("audit: %v\n%s\nup:\n%s", err, o, log.String())
			}
			cliCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		audit() // warm: the stack has served one audit
		before := requests(b, admin)
		cpuBefore := childrenCPU(b, up.Process.Pid)
		cliCPU = 0
		b.ResetTimer()
		for range b.N {
			audit()
		}
		b.StopTimer()
		reportRequests(b, before, requests(b, admin))
		reportCPU(b, cpuBefore, childrenCPU(b, up.Process.Pid), cliCPU)
		logLines(b, filepath.Join(state, "logs"), "collected", "audit started", "audit succeeded", "watch cache")
		b.ReportMetric(float64(objects), "objects")
	})
}

// agentKubeconfig applies deploy/rbac and writes a kubeconfig with a token
// of the rbac-agent's ServiceAccount.
func agentKubeconfig(tb testing.TB, s *kube.Server, admin kubernetes.Interface) (path, token string) {
	tb.Helper()
	ctx := context.Background()
	if err := kube.Apply(ctx, admin, rbac.RBACAgent()); err != nil && !strings.Contains(err.Error(), "already exists") {
		tb.Fatal(err)
	}
	hours := int64(6 * 3600)
	tok, err := admin.CoreV1().ServiceAccounts("secureaudit").CreateToken(ctx, "rbac-agent",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hours}}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	path, err = s.Kubeconfig("rbac-agent", tok.Status.Token)
	if err != nil {
		tb.Fatal(err)
	}
	return path, tok.Status.Token
}

// waitFile waits until path exists.
func waitFile(tb testing.TB, path string, timeout time.Duration, log *bytes.Buffer) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		} else if !errors.Is(err, os.ErrNotExist) {
			tb.Fatal(err)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not written within %s:\n%s", path, timeout, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requests reads apiserver_request_total from the API server's /metrics,
// summed by "VERB resource[/subresource]".
func requests(tb testing.TB, admin kubernetes.Interface) map[string]float64 {
	tb.Helper()
	raw, err := admin.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for kv := range strings.SplitSeq(line[len("apiserver_request_total{"):end], ",") {
			k, val, ok := strings.Cut(kv, "=")
			if ok {
				labels[k] = strings.Trim(val, `"`)
			}
		}
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		if labels["resource"] == "" {
			key = labels["verb"] + " (non-resource)"
		}
		out[key] += v
	}
	return out
}

// reportRequests reports the requests per operation and logs them by kind.
func reportRequests(b *testing.B, before, after map[string]float64) {
	var total float64
	var lines []string
	// The scrape that read before is counted in after: not the operation's.
	before = maps.Clone(before)
	before["GET (non-resource)"]++
	for k, v := range after {
		d := v - before[k]
		if d <= 0 {
			continue
		}
		total += d
		lines = append(lines, fmt.Sprintf("%s %.1f", k, d/float64(b.N)))
	}
	sort.Strings(lines)
	b.ReportMetric(total/float64(b.N), "apireq/op")
	b.Logf("API server requests per op (every client): %.1f: %s", total/float64(b.N), strings.Join(lines, "; "))
}

// logLines logs the last three lines of each service log in dir that
// contain one of the words: where a warm audit spends its time.
func logLines(b *testing.B, dir string, words ...string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Logf("logs: %v", err)
		return
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var hits []string
		for line := range strings.SplitSeq(string(data), "\n") {
			for _, w := range words {
				if strings.Contains(line, w) {
					hits = append(hits, line)
					break
				}
			}
		}
		for _, h := range hits[max(0, len(hits)-3):] {
			b.Logf("%s: %s", e.Name(), h)
		}
	}
}

// clusterObjects counts the objects the rbac-agent reads: Namespaces,
// ServiceAccounts, Pods and the four RBAC kinds.
func clusterObjects(tb testing.TB, admin kubernetes.Interface) int {
	tb.Helper()
	ctx := context.Background()
	all := metav1.ListOptions{}
	n := 0
	for _, list := range []func() (int, error){
		func() (int, error) { l, err := admin.CoreV1().Namespaces().List(ctx, all); return len(l.Items), err },
		func() (int, error) {
			l, err := admin.CoreV1().ServiceAccounts("").List(ctx, all)
			return len(l.Items), err
		},
		func() (int, error) { l, err := admin.CoreV1().Pods("").List(ctx, all); return len(l.Items), err },
		func() (int, error) { l, err := admin.RbacV1().Roles("").List(ctx, all); return len(l.Items), err },
		func() (int, error) {
			l, err := admin.RbacV1().RoleBindings("").List(ctx, all)
			return len(l.Items), err
		},
		func() (int, error) { l, err := admin.RbacV1().ClusterRoles().List(ctx, all); return len(l.Items), err },
		func() (int, error) {
			l, err := admin.RbacV1().ClusterRoleBindings().List(ctx, all)
			return len(l.Items), err
		},
	} {
		c, err := list()
		if err != nil {
			tb.Fatal(err)
		}
		n += c
	}
	return n
}

// childrenCPU returns the CPU time (user and system) of each child process
// of pid, by command name, from /proc.
func childrenCPU(tb testing.TB, pid int) map[string]time.Duration {
	tb.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	// Clock ticks per second: 100 on Linux (USER_HZ) for every architecture
	// Go supports.
	const hz = 100
	out := map[string]time.Duration{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ... utime stime: fields after the comm's ")".
		stat := string(data)
		end := strings.LastIndexByte(stat, ')')
		start := strings.IndexByte(stat, '(')
		if end < 0 || start < 0 {
			continue
		}
		fields := strings.Fields(stat[end+1:])
		if len(fields) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid != pid {
			continue
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		out[stat[start+1:end]] += time.Duration(utime+stime) * time.Second / hz
	}
	return out
}

// reportCPU reports cpu-s/op, the CPU time of the services (the change of
// childrenCPU) and of the CLI per operation, and logs it by process.
func reportCPU(b *testing.B, before, after map[string]time.Duration, cli time.Duration) {
	total := cli
	lines := []string{fmt.Sprintf("cli %.3f", cli.Seconds()/float64(b.N))}
	for name, t := range after {
		d := t - before[name]
		total += d
		lines = append(lines, fmt.Sprintf("%s %.3f", name, d.Seconds()/float64(b.N)))
	}
	sort.Strings(lines)
	b.ReportMetric(total.Seconds()/float64(b.N), "cpu-s/op")
	b.Logf("CPU seconds per op: %.3f: %s", total.Seconds()/float64(b.N), strings.Join(lines, "; "))
}
