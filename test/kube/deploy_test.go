package kube_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"secureaudit.dev/deploy/scopes"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/services/rbac-agent/selfcheck"
)

// TestDeployAccepted submits the rendered deploy/secureaudit.yaml to the real
// API server: the namespace and RBAC for real, everything else with
// server-side dry-run, and each Deployment's pod template as a dry-run Pod,
// which the restricted Pod Security admission of the namespace must accept.
// Then, for every ServiceAccount, a SubjectAccessReview by the real
// authorizer: it may do exactly what its scope manifest declares (the
// rbac-agent's read rules in every namespace) and none of the probes.
func TestDeployAccepted(t *testing.T) {
	s := server(t)
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
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "secureaudit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var templates []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatal(err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if ns := obj.GetNamespace(); ns != "" {
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		// Server-side apply: dry-run, except what the checks below need for real.
		opts := metav1.ApplyOptions{FieldManager: "secureaudit-deploy-test", Force: true, DryRun: []string{metav1.DryRunAll}}
		switch gvk.Kind {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			opts.DryRun = nil
		case "Deployment":
			templates = append(templates, obj.DeepCopy())
		}
		if _, err := ri.Apply(ctx, obj.GetName(), &obj, opts); err != nil {
			t.Errorf("%s %s refused: %v", gvk.Kind, obj.GetName(), err)
		}
	}
	if len(templates) != 5 {
		t.Fatalf("%d Deployments, want 5", len(templates))
	}
	for _, d := range templates {
		tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pod); err != nil {
			t.Fatal(err)
		}
		pod.Name = d.GetName() + "-dry-run"
		if _, err := admin.CoreV1().Pods("secureaudit").Create(ctx, &pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("pod of %s refused (restricted Pod Security): %v", d.GetName(), err)
		}
	}

	// The namespace's Pod Security admission does refuse a privileged pod.
	privileged := true
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "privileged-dry-run"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: &privileged}}}}}
	if _, err := admin.CoreV1().Pods("secureaudit").Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("a privileged pod was not refused by the namespace's Pod Security admission: %v", err)
	}

	// Each ServiceAccount as the authorizer sees it.
	for _, w := range []string{"rbac-agent", "entra-agent", "risk-agent", "report-agent", "orchestrator"} {
		raw, err := scopes.Manifest(w)
		if err != nil {
			t.Fatal(err)
		}
		m, err := scope.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		declared := selfcheck.RulesFromManifest(m.Spec.Permissions)
		user := "system:serviceaccount:secureaudit:" + w
		can := func(ns, verb, group, resource, sub string) bool {
			t.Helper()
			r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:secureaudit", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub}}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return r.Status.Allowed
		}
		t.Run(w, func(t *testing.T) {
			// What rbac-agent's manifest declares: allowed only to the rbac-agent.
			rbacRaw, _ := scopes.Manifest("rbac-agent")
			rm, _ := scope.Parse(rbacRaw)
			for _, r := range selfcheck.RulesFromManifest(rm.Spec.Permissions) {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							want := len(declared) > 0
							for _, ns := range []string{"", "kube-system"} {
								if got := can(ns, v, g, res, ""); got != want {
									t.Errorf("%s %s.%s in %q: allowed %v, manifest says %v", v, res, g, ns, got, want)
								}
							}
						}
					}
				}
			}
			for _, p := range selfcheck.Probes {
				if can("", p.Verb, p.Group, p.Resource, p.Subresource) {
					t.Errorf("%s may %s", w, p)
				}
			}
		})
	}
}

// repoRoot is the repository root, two directories above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}
