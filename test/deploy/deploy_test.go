// Package deploy checks the Kubernetes manifests of deploy/: the kustomization
// renders, the committed deploy/secureaudit.yaml is its output, and the
// rendered objects hold the security properties the design promises.
package deploy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/secureaudit.yaml")

func deployDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy")
}

// render runs kustomize over deploy/.
func render(t *testing.T) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), deployDir(t))
	if err != nil {
		t.Fatalf("kustomize build deploy/: %v", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	header := "# Rendered from deploy/kustomization.yaml by test/deploy (go test ./... -update); do not edit.\n"
	return append([]byte(header), out...)
}

func TestRenderedIsCommitted(t *testing.T) {
	got := render(t)
	path := filepath.Join(deployDir(t), "secureaudit.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deploy/secureaudit.yaml is not the rendering of deploy/kustomization.yaml; run go test ./test/deploy -update and review the diff")
	}
}

type object map[string]any

func (o object) str(path ...string) string {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	case nil:
		return ""
	}
	b, _ := yaml.Marshal(cur)
	return strings.TrimSpace(string(b))
}

func objects(t *testing.T) []object {
	t.Helper()
	var out []object
	for _, doc := range strings.Split(string(render(t)), "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if len(o) > 0 {
			out = append(out, o)
		}
	}
	return out
}

var services = []string{"orchestrator", "rbac-agent", "entra-agent", "risk-agent", "report-agent"}

func TestSecurityProperties(t *testing.T) {
	objs := objects(t)
	byKind := map[string]map[string]object{}
	for _, o := range objs {
		k := o.str("kind")
		if byKind[k] == nil {
			byKind[k] = map[string]object{}
		}
		byKind[k][o.str("metadata", "name")] = o
		if ns := o.str("metadata", "namespace"); k != "Namespace" && k != "ClusterRole" && k != "ClusterRoleBinding" && ns != "secureaudit" {
			t.Errorf("%s %s is in namespace %q", k, o.str("metadata", "name"), ns)
		}
	}
	if got := byKind["Namespace"]["secureaudit"].str("metadata", "labels", "pod-security.kubernetes.io/enforce"); got != "restricted" {
		t.Errorf("namespace enforces %q, want restricted", got)
	}
	for _, s := range services {
		t.Run(s, func(t *testing.T) {
			sa := byKind["ServiceAccount"][s]
			if sa == nil {
				t.Fatal("no ServiceAccount")
			}
			if want := map[bool]string{true: "true", false: "false"}[s == "rbac-agent"]; sa.str("automountServiceAccountToken") != want {
				t.Errorf("ServiceAccount automount %q, want %s", sa.str("automountServiceAccountToken"), want)
			}
			d := byKind["Deployment"][s]
			if d == nil {
				t.Fatal("no Deployment")
			}
			pod := object(d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any))
			if pod.str("serviceAccountName") != s {
				t.Errorf("runs as %q", pod.str("serviceAccountName"))
			}
			for path, want := range map[string]string{
				"securityContext.runAsNonRoot": "true", "securityContext.seccompProfile.type": "RuntimeDefault",
			} {
				if got := pod.str(strings.Split(path, ".")...); got != want {
					t.Errorf("pod %s = %q, want %q", path, got, want)
				}
			}
			for _, c := range pod["containers"].([]any) {
				c := object(c.(map[string]any))
				for path, want := range map[string]string{
					"securityContext.allowPrivilegeEscalation": "false", "securityContext.readOnlyRootFilesystem": "true",
					"securityContext.capabilities.drop": "- ALL",
				} {
					if got := c.str(strings.Split(path, ".")...); got != want {
						t.Errorf("container %s = %q, want %q", path, got, want)
					}
				}
				if !strings.Contains(c.str("volumeMounts"), "spiffe.io") {
					t.Error("no SPIFFE certificate mount")
				}
			}
			if !strings.Contains(pod.str("volumes"), "spiffe.csi.cert-manager.io") {
				t.Error("certificates do not come from csi-driver-spiffe")
			}
			if byKind["Service"][s] == nil || byKind["NetworkPolicy"][s] == nil {
				t.Error("no Service or NetworkPolicy")
			}
			np := byKind["NetworkPolicy"][s]
			if s != "orchestrator" && !strings.Contains(np.str("spec", "ingress"), "app.kubernetes.io/name: orchestrator") {
				t.Errorf("%s accepts calls from others than the orchestrator:\n%s", s, np.str("spec", "ingress"))
			}
		})
	}
	if dd := byKind["NetworkPolicy"]["default-deny"]; dd == nil || dd.str("spec", "podSelector") != "{}" {
		t.Error("no default-deny NetworkPolicy for every pod")
	}
	if got := byKind["ServiceAccount"]["entra-agent"].str("metadata", "annotations", "azure.workload.identity/client-id"); got == "" {
		t.Error("the entra-agent's ServiceAccount has no workload identity client ID")
	}
	for name, cr := range byKind["ClusterRole"] {
		if rules := cr.str("rules"); strings.Contains(rules, "secrets") || strings.Contains(rules, "'*'") {
			t.Errorf("ClusterRole %s grants secrets or wildcards:\n%s", name, rules)
		}
	}
	var kinds []string
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	t.Logf("rendered kinds: %v", kinds)
}
