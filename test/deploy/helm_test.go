package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"secureaudit.dev/deploy/images"
)

func chartDir(t *testing.T) string { return filepath.Join(deployDir(t), "helm", "secureaudit") }

// renderHelm renders the chart with the Helm Go SDK as `helm install
// --dry-run=client` (or `helm template`) would, release "secureaudit" in
// namespace, with values merged over the chart's values.yaml.
func renderHelm(t *testing.T, namespace string, values map[string]any) ([]object, error) {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{Name: "secureaudit", Namespace: namespace, Revision: 1, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range files {
		if strings.HasSuffix(name, ".yaml") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []object
	for _, name := range names {
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(files[name], -1) {
			var o object
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if len(o) > 0 {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

func mustRenderHelm(t *testing.T, namespace string, values map[string]any) []object {
	t.Helper()
	objs, err := renderHelm(t, namespace, values)
	if err != nil {
		t.Fatalf("render chart: %v", err)
	}
	return objs
}

// renderKustomize runs kustomize over a kustomization directory.
func renderKustomize(t *testing.T, dir string) []object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// helmLabels are the labels the chart adds to every object's metadata; the
// kustomize base has no release to name.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

func key(o object) string {
	return o.str("kind") + " " + o.str("metadata", "namespace") + "/" + o.str("metadata", "name")
}

// byKey indexes objects by kind, namespace and name, without the Helm
// labels; it fails on duplicates.
func byKey(t *testing.T, objs []object, stripHelm bool) map[string]object {
	t.Helper()
	out := map[string]object{}
	for _, o := range objs {
		if stripHelm {
			md := o["metadata"].(map[string]any)
			if labels, ok := md["labels"].(map[string]any); ok {
				for _, l := range helmLabels {
					if _, ok := labels[l]; !ok {
						t.Errorf("%s: no label %s", key(o), l)
					}
					delete(labels, l)
				}
				if len(labels) == 0 {
					delete(md, "labels")
				}
			}
		}
		// As JSON, so that numbers compare alike whoever parsed them.
		data, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		o = object{}
		if err := yaml.Unmarshal(data, &o); err != nil {
			t.Fatal(err)
		}
		k := key(o)
		if _, dup := out[k]; dup {
			t.Errorf("%s declared twice", k)
		}
		out[k] = o
	}
	return out
}

// webhookOverlay writes, outside deploy/, an overlay of the base with the
// controls-webhook component, as an adopter would.
func webhookOverlay(t *testing.T) string { return componentOverlay(t, "controls-webhook") }

// componentOverlay writes, outside deploy/, an overlay of the base with one
// of deploy/components, as an adopter would.
func componentOverlay(t *testing.T, component string) string {
	dir := t.TempDir()
	base, err := filepath.Rel(dir, deployDir(t)) // kustomize takes relative roots only
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s]\n",
		base, filepath.Join(base, "components", component))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHelmMatchesKustomize: the chart with its default values declares the
// same objects as the kustomize base, field for field (images, args, env,
// ports, probes, resources, security contexts, volumes, RBAC rules,
// NetworkPolicies, PodDisruptionBudgets), apart from the labels Helm adds;
// and with the controls webhook set, or PostgreSQL, or an entra-agent for another tenant
// (entraAgent.tenants), the same as the overlay an adopter writes with the component that sets it.
func TestHelmMatchesKustomize(t *testing.T) {
	for _, tc := range []struct {
		name, kustomization string
		values              map[string]any
	}{
		{"base", deployDir(t), nil},
		{"controls-webhook", webhookOverlay(t), map[string]any{
			"orchestrator": map[string]any{"controlsWebhook": map[string]any{"url": "https://alerts.example.com/secureaudit", "cidrs": []any{"203.0.113.10/32"}}},
		}},
		{"oidc", componentOverlay(t, "oidc"), map[string]any{
			"orchestrator": map[string]any{"oidc": map[string]any{"issuer": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0", "audience": "00000000-0000-0000-0000-000000000000"}},
		}},
		{"postgres", componentOverlay(t, "postgres"), map[string]any{
			"orchestrator": map[string]any{"replicas": 3, "postgres": map[string]any{"secretName": "secureaudit-database", "cidrs": []any{"192.0.2.10/32"}}},
		}},
		{"tenant-entra-agent", componentOverlay(t, "tenant-entra-agent"), tenantValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := byKey(t, renderKustomize(t, tc.kustomization), false)
			h := byKey(t, mustRenderHelm(t, "secureaudit", tc.values), true)
			var kk, hk []string
			for x := range k {
				kk = append(kk, x)
			}
			for x := range h {
				hk = append(hk, x)
			}
			slices.Sort(kk)
			slices.Sort(hk)
			if diff := cmp.Diff(kk, hk); diff != "" {
				t.Fatalf("objects (-kustomize +helm):\n%s", diff)
			}
			for _, x := range kk {
				if diff := cmp.Diff(k[x], h[x]); diff != "" {
					t.Errorf("%s (-kustomize +helm):\n%s", x, diff)
				}
			}
			t.Logf("%d objects alike", len(kk))
			// The caller policy the orchestrator mounts is deploy/callers/callers.yaml.
			policy, err := os.ReadFile(filepath.Join(deployDir(t), "callers", "callers.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if cm := k["ConfigMap secureaudit/orchestrator-callers"]; cm == nil || cm.str("data", "callers.yaml") != string(policy) {
				t.Errorf("ConfigMap orchestrator-callers does not hold deploy/callers/callers.yaml: %v", cm)
			}
			if args := k["Deployment secureaudit/orchestrator"].str("spec", "template", "spec", "containers"); !strings.Contains(args, "-callers=/etc/secureaudit/callers/callers.yaml") {
				t.Error("the orchestrator is not given the caller policy")
			}
			if tc.name == "oidc" {
				if k["NetworkPolicy secureaudit/orchestrator-oidc"] == nil {
					t.Error("no egress to the OpenID Connect issuer")
				}
				if env := k["Deployment secureaudit/orchestrator"].str("spec", "template", "spec", "containers"); !strings.Contains(env, "SECUREAUDIT_OIDC_ISSUER") || !strings.Contains(env, "SECUREAUDIT_OIDC_AUDIENCE") {
					t.Error("the orchestrator is not given the issuer and audience")
				}
			}
			if tc.name == "controls-webhook" {
				np := k["NetworkPolicy secureaudit/orchestrator-controls-webhook"]
				if np == nil || !strings.Contains(np.str("spec", "egress"), "port: 443") {
					t.Errorf("no egress to the controls webhook: %v", np)
				}
				if env := k["Deployment secureaudit/orchestrator"].str("spec", "template", "spec", "containers"); !strings.Contains(env, "SECUREAUDIT_CONTROLS_WEBHOOK") {
					t.Error("the orchestrator is not given the webhook")
				}
			}
		})
	}
}

func deploymentsOf(objs []object) map[string]object {
	out := map[string]object{}
	for _, o := range objs {
		if o.str("kind") == "Deployment" {
			out[o.str("metadata", "name")] = o
		}
	}
	return out
}

func containerOf(d object) object {
	pod := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	return object(pod["containers"].([]any)[0].(map[string]any))
}

// TestHelmValues: the values an adopter sets reach every object: the
// namespace (objects, ClusterRoleBinding subject), the trust domain (every
// container's SECUREAUDIT_TRUST_DOMAIN), the image repository and tag,
// replicas and resources; an orchestrator with more than one replica and a
// latest tag are refused.
func TestHelmValues(t *testing.T) {
	objs := mustRenderHelm(t, "security-tools", map[string]any{
		"trustDomain": "prod.example.com",
		"image":       map[string]any{"repository": "registry.example/sec", "tag": "v9.8.7"},
		"riskAgent":   map[string]any{"replicas": 3, "resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}}},
	})
	for _, o := range objs {
		switch k := o.str("kind"); k {
		case "ClusterRole":
		case "Namespace":
			if o.str("metadata", "name") != "security-tools" {
				t.Errorf("namespace %s", o.str("metadata", "name"))
			}
		case "ClusterRoleBinding":
			if !strings.Contains(o.str("subjects"), "namespace: security-tools") {
				t.Errorf("ClusterRoleBinding subjects %s", o.str("subjects"))
			}
		default:
			if ns := o.str("metadata", "namespace"); ns != "security-tools" {
				t.Errorf("%s in namespace %q", key(o), ns)
			}
		}
	}
	deps := deploymentsOf(objs)
	if len(deps) != 5 {
		t.Fatalf("%d Deployments", len(deps))
	}
	for name, d := range deps {
		c := containerOf(d)
		if got, want := c.str("image"), "registry.example/sec/"+name+":v9.8.7"; got != want {
			t.Errorf("%s image %s, want %s", name, got, want)
		}
		if !strings.Contains(c.str("env"), "name: SECUREAUDIT_TRUST_DOMAIN\n  value: prod.example.com") {
			t.Errorf("%s env:\n%s", name, c.str("env"))
		}
	}
	if got := deps["risk-agent"].str("spec", "replicas"); got != "3" {
		t.Errorf("risk-agent replicas %s", got)
	}
	if got := containerOf(deps["risk-agent"]).str("resources", "limits", "memory"); got != "1Gi" {
		t.Errorf("risk-agent memory limit %s", got)
	}
	for name, values := range map[string]map[string]any{
		"two orchestrators": {"orchestrator": map[string]any{"replicas": 2}},
		"latest":            {"image": map[string]any{"tag": "latest"}},
	} {
		if _, err := renderHelm(t, "secureaudit", values); err == nil {
			t.Errorf("%s: rendered, want a refusal", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// pinned is an image reference by version tag or digest.
var pinned = regexp.MustCompile(`^[a-z0-9.-]+(/[a-z0-9._-]+)+(:v?[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+_-]*|@sha256:[0-9a-f]{64})$`)

// TestImagesPinned: every image reference in deploy/ (the kustomize files,
// the rendered secureaudit.yaml, the chart's templates and values, each
// rendering) names a version, never latest or no tag; kustomize and the
// chart's appVersion name the same version; and each Deployment's image and
// ports are those make images builds (deploy/images).
func TestImagesPinned(t *testing.T) {
	imageLine := regexp.MustCompile(`(?m)^[ \t]*-?[ \t]*image:[ \t]*(\S+)`)
	var refs int
	err := filepath.Walk(deployDir(t), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".tpl") || strings.Contains(p, "Dockerfile")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(p, "Dockerfile") {
			t.Errorf("%s: images are built by make images (deploy/images), not Dockerfiles", p)
		}
		for _, m := range imageLine.FindAllStringSubmatch(string(data), -1) {
			ref := strings.Trim(m[1], `"'`)
			if strings.Contains(ref, "{{") {
				continue // the chart's template; checked rendered below
			}
			refs++
			if !pinned.MatchString(ref) {
				t.Errorf("%s: image %s is not pinned to a version", p, ref)
			}
		}
		if strings.Contains(string(data), ":latest") {
			t.Errorf("%s mentions :latest", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	tag, err := images.Tag(chart.AppVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, objs := range map[string][]object{"kustomize": objects(t), "helm": mustRenderHelm(t, "secureaudit", nil)} {
		deps := deploymentsOf(objs)
		for _, s := range images.Services {
			d := deps[s.Name]
			if d == nil {
				t.Fatalf("%s: no Deployment %s", name, s.Name)
			}
			c := containerOf(d)
			if got, want := c.str("image"), images.Ref("secureaudit", s.Name, tag); got != want {
				t.Errorf("%s: %s image %s, want %s (the chart's appVersion)", name, s.Name, got, want)
			}
			if !pinned.MatchString(c.str("image")) {
				t.Errorf("%s: %s image %s not pinned", name, s.Name, c.str("image"))
			}
			want := fmt.Sprintf("- containerPort: %d\n  name: grpc\n- containerPort: %d\n  name: health", s.Port, s.Health)
			if got := c.str("ports"); got != want {
				t.Errorf("%s: %s ports\n%s\nwant those the image exposes\n%s", name, s.Name, got, want)
			}
			refs++
		}
	}
	t.Logf("%d image references checked, version %s", refs, tag)
}

// TestDisruptionAndStrategy: in both renderings every Deployment has a
// PodDisruptionBudget selecting its pods that lets one be evicted, and the
// orchestrator, one replica on a ReadWriteOnce volume, is replaced with
// strategy Recreate (a rolling update would start the new pod while the old
// one holds the volume).
func TestDisruptionAndStrategy(t *testing.T) {
	for name, objs := range map[string][]object{"kustomize": objects(t), "helm": mustRenderHelm(t, "secureaudit", nil)} {
		t.Run(name, func(t *testing.T) {
			pdbs := map[string]object{}
			var pvc object
			for _, o := range objs {
				switch o.str("kind") {
				case "PodDisruptionBudget":
					pdbs[o.str("metadata", "name")] = o
				case "PersistentVolumeClaim":
					pvc = o
				}
			}
			for n, d := range deploymentsOf(objs) {
				p := pdbs[n]
				if p == nil {
					t.Errorf("%s: no PodDisruptionBudget", n)
					continue
				}
				if got, want := p.str("spec", "selector"), d.str("spec", "selector"); got != want {
					t.Errorf("%s: PodDisruptionBudget selects %s, the Deployment %s", n, got, want)
				}
				if p.str("spec", "maxUnavailable") != "1" || p.str("spec", "unhealthyPodEvictionPolicy") != "AlwaysAllow" {
					t.Errorf("%s: PodDisruptionBudget %s", n, p.str("spec"))
				}
			}
			o := deploymentsOf(objs)["orchestrator"]
			if o.str("spec", "replicas") != "1" || o.str("spec", "strategy", "type") != "Recreate" {
				t.Errorf("orchestrator replicas %s strategy %q, want 1 and Recreate", o.str("spec", "replicas"), o.str("spec", "strategy", "type"))
			}
			if pvc == nil || pvc.str("spec", "accessModes") != "- ReadWriteOnce" || !strings.Contains(o.str("spec", "template", "spec", "volumes"), "claimName: "+pvc.str("metadata", "name")) {
				t.Errorf("the orchestrator's volume is not the ReadWriteOnce claim: %v", pvc)
			}
		})
	}
}
