package collect

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// StripPod returns a copy of p holding only what the snapshot reads of a
// Pod (convertPod): its name, namespace, UID, resourceVersion, labels and
// annotations (without kubectl's last-applied copy), and of its spec the
// ServiceAccount, token automount, container images and the Secret and
// ServiceAccount token sources of its volumes. Status, managed fields,
// commands, environment and the rest are dropped, so that a cache of every
// Pod holds a fraction of their size.
func StripPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{ObjectMeta: stripMeta(p.ObjectMeta)}
	out.Spec.ServiceAccountName = p.Spec.ServiceAccountName
	out.Spec.DeprecatedServiceAccount = p.Spec.DeprecatedServiceAccount
	out.Spec.AutomountServiceAccountToken = p.Spec.AutomountServiceAccountToken
	images := func(cs []corev1.Container) []corev1.Container {
		if len(cs) == 0 {
			return nil
		}
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Image: c.Image}
		}
		return out
	}
	out.Spec.InitContainers = images(p.Spec.InitContainers)
	out.Spec.Containers = images(p.Spec.Containers)
	for _, v := range p.Spec.Volumes {
		sv := corev1.Volume{Name: v.Name}
		if v.Secret != nil {
			sv.Secret = &corev1.SecretVolumeSource{SecretName: v.Secret.SecretName}
		}
		if v.Projected != nil {
			sv.Projected = &corev1.ProjectedVolumeSource{}
			for _, src := range v.Projected.Sources {
				var ps corev1.VolumeProjection
				if t := src.ServiceAccountToken; t != nil {
					ps.ServiceAccountToken = &corev1.ServiceAccountTokenProjection{Audience: t.Audience, ExpirationSeconds: t.ExpirationSeconds, Path: t.Path}
				}
				if src.Secret != nil {
					ps.Secret = &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: src.Secret.Name}}
				}
				sv.Projected.Sources = append(sv.Projected.Sources, ps)
			}
		}
		out.Spec.Volumes = append(out.Spec.Volumes, sv)
	}
	return out
}

// Strip is the transform of the rbac-agent's watch cache: Pods as StripPod
// leaves them, other objects without managed fields and kubectl's
// last-applied copy (which the snapshot drops too). Anything else, such as
// a deletion tombstone, is returned as it is.
func Strip(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return StripPod(o), nil
	case runtime.Object:
		if m, err := meta.Accessor(o); err == nil {
			m.SetManagedFields(nil)
			if a := m.GetAnnotations(); a != nil {
				if _, ok := a[lastApplied]; ok {
					m.SetAnnotations(withoutLastApplied(a))
				}
			}
		}
		return o, nil
	}
	return obj, nil
}

// stripMeta keeps what convertMeta reads, and the resourceVersion.
func stripMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels, Annotations: m.Annotations}
	if _, ok := m.Annotations[lastApplied]; ok {
		out.Annotations = withoutLastApplied(m.Annotations)
	}
	return out
}

func withoutLastApplied(a map[string]string) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		if k != lastApplied {
			out[k] = v
		}
	}
	return out
}
