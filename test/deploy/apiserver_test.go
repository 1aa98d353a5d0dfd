package deploy

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"secureaudit.dev/test/kube"
)

// submit applies objects to the API server with server-side apply: the
// Namespace, ServiceAccounts and RBAC for real (so that what follows is
// checked against them), everything else with server-side dry-run; then each
// Deployment's pod template as a dry-run Pod, which the namespace's
// restricted Pod Security admission must accept. It returns the number of
// objects accepted.
func submit(t *testing.T, s *kube.Server, objs []object, dryRunAll bool) int {
	t.Helper()
	ctx := context.Background()
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(s.Config(s.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(admin.Discovery()))
	accepted := 0
	var pods []*corev1.Pod
	// Namespaces first, as Helm and kubectl order them.
	ordered := make([]object, 0, len(objs))
	for _, o := range objs {
		if o.str("kind") == "Namespace" {
			ordered = append(ordered, o)
		}
	}
	for _, o := range objs {
		if o.str("kind") != "Namespace" {
			ordered = append(ordered, o)
		}
	}
	for _, o := range ordered {
		obj := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(map[string]any(o))}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if ns := obj.GetNamespace(); ns != "" {
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		opts := metav1.ApplyOptions{FieldManager: "secureaudit-deploy-test", Force: true, DryRun: []string{metav1.DryRunAll}}
		switch gvk.Kind {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			if !dryRunAll {
				opts.DryRun = nil
			}
		case "Deployment":
			tmpl, _, _ := unstructured.NestedMap(obj.Object, "spec", "template")
			var pod corev1.Pod
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pod); err != nil {
				t.Fatal(err)
			}
			pod.Name, pod.Namespace = obj.GetName()+"-dry-run", obj.GetNamespace()
			pods = append(pods, &pod)
		}
		if _, err := ri.Apply(ctx, obj.GetName(), obj, opts); err != nil {
			t.Errorf("%s %s/%s refused: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
			continue
		}
		accepted++
	}
	if !dryRunAll {
		for _, pod := range pods {
			if _, err := admin.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("pod of %s refused (restricted Pod Security): %v", strings.TrimSuffix(pod.Name, "-dry-run"), err)
			}
		}
	}
	return accepted
}

// TestHelmAccepted submits the chart's rendering to the real API server: the
// defaults in namespace secureaudit, and an adopter's values (another
// namespace and trust domain, the controls webhook with its egress, more
// agent replicas, two orchestrator replicas on PostgreSQL); every object
// passes the server's validation and
// admission, every pod template the restricted Pod Security admission of
// the namespace the chart creates.
func TestHelmAccepted(t *testing.T) {
	s := server(t)
	for _, tc := range []struct {
		namespace string
		values    map[string]any
	}{
		{"secureaudit", nil},
		{"security-tools", map[string]any{
			"trustDomain": "prod.example.com",
			"image":       map[string]any{"repository": "registry.example/sec", "tag": "v9.8.7"},
			"orchestrator": map[string]any{"controlsWebhook": map[string]any{"url": "https://alerts.example.com/x", "port": 8443, "cidrs": []any{"203.0.113.0/24"}},
				"replicas": 2, "postgres": map[string]any{"secretName": "db", "evidenceKeySecretName": "key", "port": 6432}},
			"riskAgent": map[string]any{"replicas": 3},
		}},
	} {
		t.Run(tc.namespace, func(t *testing.T) {
			objs := mustRenderHelm(t, tc.namespace, tc.values)
			n := submit(t, s, objs, false)
			t.Logf("%d of %d objects accepted", n, len(objs))
			admin, err := s.Admin()
			if err != nil {
				t.Fatal(err)
			}
			ns, err := admin.CoreV1().Namespaces().Get(context.Background(), tc.namespace, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("namespace labels %v", ns.Labels)
			}
			// The rbac-agent's binding names its ServiceAccount in this namespace.
			if _, err := admin.RbacV1().ClusterRoleBindings().Get(context.Background(), "secureaudit-rbac-agent", metav1.GetOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
}
