package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/yaml"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/pki"
)

// container is the part of a rendered Deployment's container the test reads.
type container struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	Env  []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `json:"fieldPath"`
			} `json:"fieldRef"`
			ResourceFieldRef *struct {
				Resource string `json:"resource"`
				Divisor  string `json:"divisor"`
			} `json:"resourceFieldRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	Resources struct {
		Limits struct {
			Memory string `json:"memory"`
		} `json:"limits"`
	} `json:"resources"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	ReadinessProbe *probe `json:"readinessProbe"`
	// Namespace is the Deployment's, as the downward API gives it.
	Namespace     string `json:"-"`
	LivenessProbe *probe `json:"livenessProbe"`
}

type probe struct {
	GRPC *struct {
		Port    int    `json:"port"`
		Service string `json:"service"`
	} `json:"grpc"`
}

// binaryQuantity is a memory quantity with a binary suffix (512Mi) in bytes.
func binaryQuantity(t *testing.T, q string) int64 {
	t.Helper()
	for i, suffix := range []string{"Ki", "Mi", "Gi"} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("memory limit %q: %v", q, err)
			}
			return v << (10 * (i + 1))
		}
	}
	t.Fatalf("memory limit %q: only Ki, Mi and Gi are known to this test", q)
	return 0
}

// deployments reads the Deployments of the committed rendering of deploy/
// (test/deploy checks it is the kustomization's output).
func deployments(t *testing.T) map[string]container {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "deploy", "secureaudit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]container{}
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct{ Name, Namespace string }
			Spec     struct {
				Template struct {
					Spec struct {
						Containers []container `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind != "Deployment" {
			continue
		}
		if len(obj.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("Deployment %s: %d containers, want 1", obj.Metadata.Name, len(obj.Spec.Template.Spec.Containers))
		}
		c := obj.Spec.Template.Spec.Containers[0]
		c.Namespace = obj.Metadata.Namespace
		out[obj.Metadata.Name] = c
	}
	return out
}

// TestProbesFromManifests runs each Deployment's container as the rendered
// manifest specifies it (its args, its certificate paths pointing at the
// certificates the CSI driver would mount) and asks, as the kubelet's gRPC
// probe does (plaintext, no certificate), the port and service its
// readiness and liveness probes name: both answer SERVING, and that port
// serves nothing but health and the Prometheus scrape (GET /metrics).
func TestProbesFromManifests(t *testing.T) {
	deps := deployments(t)
	if len(deps) != 5 {
		t.Fatalf("%d Deployments in deploy/secureaudit.yaml, want 5", len(deps))
	}
	for name, c := range deps {
		t.Run(name, func(t *testing.T) {
			if c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil || c.LivenessProbe == nil || c.LivenessProbe.GRPC == nil {
				t.Fatal("readiness and liveness probes must be gRPC probes")
			}
			port := c.ReadinessProbe.GRPC.Port
			if c.LivenessProbe.GRPC.Port != port {
				t.Fatalf("liveness probes port %d, readiness port %d", c.LivenessProbe.GRPC.Port, port)
			}
			named := map[string]int{}
			for _, p := range c.Ports {
				named[p.Name] = p.ContainerPort
			}
			if named["health"] != port || named["grpc"] == port {
				t.Fatalf("probes ask port %d; container ports %v: want it the port named health, not grpc", port, named)
			}

			// The probe port on a loopback address of its own, so that the
			// manifest's port number is used as it is.
			host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
			dir := t.TempDir()
			addrFile := filepath.Join(dir, "addr")
			var args []string
			healthSeen := false
			for _, a := range c.Args {
				flagName, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				switch flagName {
				case "listen":
					a = "-listen=127.0.0.1:0"
				case "health-listen":
					_, p, err := net.SplitHostPort(value)
					if err != nil || p != strconv.Itoa(port) {
						t.Fatalf("%s: the probes ask port %d", a, port)
					}
					a = "-health-listen=" + net.JoinHostPort(host, p)
					healthSeen = true
				case "in-cluster":
					// No cluster here: the example snapshot stands in.
					a = "-snapshot=" + filepath.Join(env.root, "examples", "cluster")
				case "db":
					a = "-db=" + filepath.Join(dir, "secureaudit.db")
				case "callers":
					// The ConfigMap orchestrator-callers, mounted: the shipped policy.
					a = "-callers=" + filepath.Join(env.root, "deploy", "callers", "callers.yaml")
				}
				args = append(args, a)
			}
			if !healthSeen {
				t.Fatalf("args %v have no -health-listen", c.Args)
			}
			args = append(args, "-addr-file="+addrFile)
			files := pki.Paths(env.stack.PKIDir, name)
			cmd := exec.Command(filepath.Join(env.binDir, name), args...)
			cmd.Env = os.Environ()
			for _, e := range c.Env {
				v := e.Value
				switch {
				case e.ValueFrom == nil:
				case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
					v = c.Namespace
				case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" && e.ValueFrom.ResourceFieldRef.Divisor == "":
					// As the kubelet resolves it: the limit in bytes.
					v = strconv.FormatInt(binaryQuantity(t, c.Resources.Limits.Memory), 10)
				default:
					t.Fatalf("env %s: only the downward API's metadata.namespace and limits.memory are known to this test", e.Name)
				}
				switch e.Name {
				case "SECUREAUDIT_CERT":
					v = files.Cert
				case "SECUREAUDIT_KEY":
					v = files.Key
				case "SECUREAUDIT_CA":
					v = files.CA
				}
				cmd.Env = append(cmd.Env, e.Name+"="+v)
			}
			var log bytes.Buffer
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				_ = cmd.Process.Signal(os.Interrupt)
				select {
				case <-exited:
				case <-time.After(15 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					t.Logf("%s log:\n%s", name, log.String())
				}
			}()

			conn, err := grpc.NewClient(net.JoinHostPort(host, strconv.Itoa(port)), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			health := healthpb.NewHealthClient(conn)
			ask := func(service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
				return resp.GetStatus(), err
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				st, err := ask(c.ReadinessProbe.GRPC.Service)
				if err == nil && st == healthpb.HealthCheckResponse_SERVING {
					break
				}
				select {
				case err := <-exited:
					exited <- err // for the deferred stop, which waits for it
					t.Fatalf("%s exited: %v", name, err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("readiness (%q) on %s:%d after 30s: %s %v", c.ReadinessProbe.GRPC.Service, host, port, st, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if st, err := ask(c.LivenessProbe.GRPC.Service); err != nil || st != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("liveness (%q): %s %v", c.LivenessProbe.GRPC.Service, st, err)
			}
			// The TLS port serves too: the service is up, not just its probes.
			if data, err := os.ReadFile(addrFile); err != nil || len(bytes.TrimSpace(data)) == 0 {
				t.Errorf("the gRPC port is not served: %v", err)
			}
			// Nothing but health on the probe port.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = secureauditv1.NewAuditServiceClient(conn).ListAudits(ctx, &secureauditv1.ListAuditsRequest{})
			if status.Code(err) != codes.Unimplemented {
				t.Errorf("ListAudits on the probe port: %v, want Unimplemented", err)
			}
			// Prometheus scrapes the same port; no other path is served.
			base := "http://" + net.JoinHostPort(host, strconv.Itoa(port))
			res, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatalf("GET /metrics: %v", err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("GET /metrics: %s %v", res.Status, err)
			}
			for _, want := range []string{`service_name="` + name + `"`, "\nprocess_resident_memory_bytes ", "\ngo_goroutines "} {
				if !strings.Contains(string(body), want) {
					t.Errorf("GET /metrics has no %q:\n%s", want, body)
				}
			}
			for _, path := range []string{"/", "/debug/pprof/", "/healthz"} {
				res, err := http.Get(base + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s on the probe port: %s, want 404", path, res.Status)
				}
			}
		})
	}
}
