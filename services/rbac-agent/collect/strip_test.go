package collect

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStripPodKeepsWhatTheRulesRead checks that a stripped Pod converts to
// the same workload as the whole Pod, and that what it drops is gone.
func TestStripPodKeepsWhatTheRulesRead(t *testing.T) {
	no := false
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "team-a", UID: "u1", ResourceVersion: "42",
			Labels:        map[string]string{"app": "api"},
			Annotations:   map[string]string{lastApplied: "{}", "owner": "team-a"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{ServiceAccountName: "app", DeprecatedServiceAccount: "app", AutomountServiceAccountToken: &no,
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1", Command: []string{"sh"}}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:2", Env: []corev1.EnvVar{{Name: "X", Value: "y"}}},
				{Name: "sidecar", Image: "envoy:1"}},
			Volumes: []corev1.Volume{
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "token", ExpirationSeconds: proto.Int64(3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "extra"}}},
				}}}},
				{Name: "legacy", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-token-x7k2p"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			NodeName: "node-1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.7"},
	}
	got := StripPod(p)
	if diff := cmp.Diff(convertPod(p), convertPod(got), protocmp.Transform()); diff != "" {
		t.Errorf("stripped Pod converts differently (-whole +stripped):\n%s", diff)
	}
	if got.Status.Phase != "" || got.Spec.NodeName != "" || got.ManagedFields != nil || got.Spec.Containers[0].Env != nil ||
		got.Spec.InitContainers[0].Command != nil || got.Annotations[lastApplied] != "" || got.ResourceVersion != "42" {
		t.Errorf("stripped Pod keeps too much or too little: %+v", got)
	}
	if p.Annotations[lastApplied] == "" || p.Status.Phase == "" {
		t.Error("StripPod changed its argument")
	}
}

func TestStripOtherKinds(t *testing.T) {
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r", Annotations: map[string]string{lastApplied: "{}", "owner": "x"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	want := convertRole(r)
	out, err := Strip(r)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*rbacv1.Role)
	if got.ManagedFields != nil || got.Annotations[lastApplied] != "" || got.Annotations["owner"] != "x" {
		t.Errorf("stripped Role %+v", got.ObjectMeta)
	}
	if diff := cmp.Diff(want, convertRole(got), protocmp.Transform()); diff != "" {
		t.Errorf("stripped Role converts differently:\n%s", diff)
	}
	tomb := struct{ Key string }{"ns/x"}
	if o, _ := Strip(tomb); o != tomb {
		t.Errorf("Strip changed a tombstone: %v", o)
	}
}
