package collect

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// lastApplied is kubectl's copy of the whole object as last applied; it is
// dropped because it duplicates the object (and can exceed the contract's limits).
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// defaultServiceAccount is the ServiceAccount a pod runs as when its spec names none.
const defaultServiceAccount = "default"

// Kinds the snapshot holds, by API group.
const (
	groupCore  = ""
	groupRBAC  = "rbac.authorization.k8s.io"
	groupApps  = "apps"
	groupBatch = "batch"
)

func convertMeta(m *metav1.ObjectMeta) *secureauditv1.ObjectMeta {
	out := &secureauditv1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Uid: string(m.UID)}
	if len(m.Labels) > 0 {
		out.Labels = make(map[string]string, len(m.Labels))
		for k, v := range m.Labels {
			out.Labels[k] = v
		}
	}
	for k, v := range m.Annotations {
		if k == lastApplied {
			continue
		}
		if out.Annotations == nil {
			out.Annotations = make(map[string]string, len(m.Annotations))
		}
		out.Annotations[k] = v
	}
	return out
}

func convertNamespace(o *corev1.Namespace) *secureauditv1.Namespace {
	return &secureauditv1.Namespace{Meta: convertMeta(&o.ObjectMeta)}
}

func convertServiceAccount(o *corev1.ServiceAccount) *secureauditv1.ServiceAccount {
	return &secureauditv1.ServiceAccount{Meta: convertMeta(&o.ObjectMeta), AutomountToken: copyBool(o.AutomountServiceAccountToken)}
}

func convertRole(o *rbacv1.Role) *secureauditv1.Role {
	return &secureauditv1.Role{Meta: convertMeta(&o.ObjectMeta), Rules: convertRules(o.Rules)}
}

func convertClusterRole(o *rbacv1.ClusterRole) *secureauditv1.ClusterRole {
	out := &secureauditv1.ClusterRole{Meta: convertMeta(&o.ObjectMeta), Rules: convertRules(o.Rules)}
	if o.AggregationRule != nil {
		for i := range o.AggregationRule.ClusterRoleSelectors {
			out.AggregationSelectors = append(out.AggregationSelectors, convertSelector(&o.AggregationRule.ClusterRoleSelectors[i]))
		}
	}
	return out
}

func convertRoleBinding(o *rbacv1.RoleBinding) (*secureauditv1.RoleBinding, error) {
	ref, err := convertRoleRef(o.RoleRef)
	if err != nil {
		return nil, err
	}
	subjects, err := convertSubjects(o.Subjects, o.Namespace)
	if err != nil {
		return nil, err
	}
	return &secureauditv1.RoleBinding{Meta: convertMeta(&o.ObjectMeta), RoleRef: ref, Subjects: subjects}, nil
}

func convertClusterRoleBinding(o *rbacv1.ClusterRoleBinding) (*secureauditv1.ClusterRoleBinding, error) {
	ref, err := convertRoleRef(o.RoleRef)
	if err != nil {
		return nil, err
	}
	subjects, err := convertSubjects(o.Subjects, "")
	if err != nil {
		return nil, err
	}
	return &secureauditv1.ClusterRoleBinding{Meta: convertMeta(&o.ObjectMeta), RoleRef: ref, Subjects: subjects}, nil
}

func convertRules(in []rbacv1.PolicyRule) []*secureauditv1.PolicyRule {
	if len(in) == 0 {
		return nil
	}
	out := make([]*secureauditv1.PolicyRule, 0, len(in))
	for _, r := range in {
		out = append(out, &secureauditv1.PolicyRule{
			Verbs:           r.Verbs,
			ApiGroups:       r.APIGroups,
			Resources:       r.Resources,
			ResourceNames:   r.ResourceNames,
			NonResourceUrls: r.NonResourceURLs,
		})
	}
	return out
}

func convertSelector(s *metav1.LabelSelector) *secureauditv1.LabelSelector {
	out := &secureauditv1.LabelSelector{}
	if len(s.MatchLabels) > 0 {
		out.MatchLabels = make(map[string]string, len(s.MatchLabels))
		for k, v := range s.MatchLabels {
			out.MatchLabels[k] = v
		}
	}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, &secureauditv1.LabelSelectorRequirement{
			Key:      e.Key,
			Operator: string(e.Operator),
			Values:   e.Values,
		})
	}
	return out
}

func convertRoleRef(r rbacv1.RoleRef) (*secureauditv1.RoleRef, error) {
	var kind secureauditv1.RoleKind
	switch r.Kind {
	case "Role":
		kind = secureauditv1.RoleKind_ROLE_KIND_ROLE
	case "ClusterRole":
		kind = secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE
	default:
		return nil, fmt.Errorf("roleRef: unknown kind %q (want Role or ClusterRole)", r.Kind)
	}
	return &secureauditv1.RoleRef{Kind: kind, Name: r.Name}, nil
}

// convertSubjects maps subjects; bindingNamespace is the RoleBinding's
// namespace, empty for a ClusterRoleBinding.
func convertSubjects(in []rbacv1.Subject, bindingNamespace string) ([]*secureauditv1.Subject, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]*secureauditv1.Subject, 0, len(in))
	for i, s := range in {
		sub := &secureauditv1.Subject{Name: s.Name}
		switch s.Kind {
		case rbacv1.UserKind:
			// The authorizer ignores a namespace on users and groups, and the
			// API server does not reject one; drop it rather than fail.
			sub.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_USER
		case rbacv1.GroupKind:
			sub.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
		case rbacv1.ServiceAccountKind:
			sub.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT
			sub.Namespace = s.Namespace
			// Be lenient: a ServiceAccount subject of a RoleBinding without a
			// namespace is in the binding's namespace. That is how the
			// authorizer reads it, and hand-written files often omit it. In a
			// ClusterRoleBinding there is nothing to default to, and the
			// contract's subject.service_account_namespace rule rejects it.
			if sub.Namespace == "" {
				sub.Namespace = bindingNamespace
			}
		default:
			return nil, fmt.Errorf("subjects[%d]: unknown subject kind %q (want User, Group or ServiceAccount)", i, s.Kind)
		}
		out = append(out, sub)
	}
	return out, nil
}

// podSpec is all the audit reads of a pod or pod template: which
// ServiceAccount it runs as, whether its token is automounted, the volumes
// that hand it a token another way (projected serviceAccountToken sources,
// Secrets mounted by name), and its containers' images (to name the
// component a ServiceAccount belongs to).
type podSpec struct {
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// DeprecatedServiceAccount is the old spelling of serviceAccountName.
	DeprecatedServiceAccount     string      `json:"serviceAccount,omitempty"`
	AutomountServiceAccountToken *bool       `json:"automountServiceAccountToken,omitempty"`
	Volumes                      []podVolume `json:"volumes,omitempty"`
	InitContainers               []container `json:"initContainers,omitempty"`
	Containers                   []container `json:"containers,omitempty"`
}

// container is the part of a container the audit reads: its image.
type container struct {
	Image string `json:"image,omitempty"`
}

// maxImages and maxImageLen bound Workload.images, as the contract does.
const (
	maxImages   = 64
	maxImageLen = 1024
)

// podVolume is the part of a pod volume that can carry a token.
type podVolume struct {
	Name      string           `json:"name"`
	Secret    *secretVolume    `json:"secret,omitempty"`
	Projected *projectedVolume `json:"projected,omitempty"`
}

type secretVolume struct {
	SecretName string `json:"secretName"`
}

type projectedVolume struct {
	Sources []projectedSource `json:"sources"`
}

type projectedSource struct {
	ServiceAccountToken *tokenProjection `json:"serviceAccountToken,omitempty"`
	Secret              *struct {
		Name string `json:"name"`
	} `json:"secret,omitempty"`
}

type tokenProjection struct {
	Audience          string `json:"audience,omitempty"`
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
	Path              string `json:"path"`
}

func convertWorkload(kind string, m *metav1.ObjectMeta, spec *podSpec) *secureauditv1.Workload {
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = spec.DeprecatedServiceAccount
	}
	if sa == "" {
		sa = defaultServiceAccount
	}
	w := &secureauditv1.Workload{
		Meta:           convertMeta(m),
		Kind:           kind,
		ServiceAccount: sa,
		AutomountToken: copyBool(spec.AutomountServiceAccountToken),
	}
	for _, c := range append(append([]container(nil), spec.InitContainers...), spec.Containers...) {
		if c.Image != "" && len(c.Image) <= maxImageLen && len(w.Images) < maxImages && !slices.Contains(w.Images, c.Image) {
			w.Images = append(w.Images, c.Image)
		}
	}
	secrets := map[string]bool{}
	addSecret := func(name string) {
		if name != "" && !secrets[name] && len(w.SecretVolumes) < maxTokenVolumes {
			secrets[name] = true
			w.SecretVolumes = append(w.SecretVolumes, name)
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			addSecret(v.Secret.SecretName)
		}
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret != nil {
				addSecret(src.Secret.Name)
			}
			if t := src.ServiceAccountToken; t != nil && len(w.ProjectedTokens) < maxTokenVolumes {
				pt := &secureauditv1.ProjectedToken{Volume: v.Name, Audience: t.Audience, Path: t.Path}
				if t.ExpirationSeconds != nil && *t.ExpirationSeconds > 0 {
					pt.ExpirationSeconds = *t.ExpirationSeconds
				}
				w.ProjectedTokens = append(w.ProjectedTokens, pt)
			}
		}
	}
	return w
}

// maxTokenVolumes bounds the projected tokens and Secret volumes kept per
// workload, as the contract does.
const maxTokenVolumes = 256

func convertPod(p *corev1.Pod) *secureauditv1.Workload {
	spec := &podSpec{
		ServiceAccountName:           p.Spec.ServiceAccountName,
		DeprecatedServiceAccount:     p.Spec.DeprecatedServiceAccount,
		AutomountServiceAccountToken: p.Spec.AutomountServiceAccountToken,
	}
	for _, c := range p.Spec.InitContainers {
		spec.InitContainers = append(spec.InitContainers, container{Image: c.Image})
	}
	for _, c := range p.Spec.Containers {
		spec.Containers = append(spec.Containers, container{Image: c.Image})
	}
	for _, v := range p.Spec.Volumes {
		pv := podVolume{Name: v.Name}
		if v.Secret != nil {
			pv.Secret = &secretVolume{SecretName: v.Secret.SecretName}
		}
		if v.Projected != nil {
			pv.Projected = &projectedVolume{}
			for _, src := range v.Projected.Sources {
				var ps projectedSource
				if t := src.ServiceAccountToken; t != nil {
					ps.ServiceAccountToken = &tokenProjection{Audience: t.Audience, ExpirationSeconds: t.ExpirationSeconds, Path: t.Path}
				}
				if src.Secret != nil {
					ps.Secret = &struct {
						Name string `json:"name"`
					}{Name: src.Secret.Name}
				}
				pv.Projected.Sources = append(pv.Projected.Sources, ps)
			}
		}
		spec.Volumes = append(spec.Volumes, pv)
	}
	return convertWorkload("Pod", &p.ObjectMeta, spec)
}

func copyBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}
