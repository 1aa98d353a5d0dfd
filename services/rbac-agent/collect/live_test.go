package collect_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
)

// The fake clientset stands in for the API server until the live source is
// tested against a real kube-apiserver.
func newFake(t *testing.T, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	client := fake.NewClientset(objs...)
	disc, ok := client.Discovery().(*fakediscovery.FakeDiscovery)
	if !ok {
		t.Fatalf("discovery is %T", client.Discovery())
	}
	disc.FakedServerVersion = &version.Info{GitVersion: "v1.34.1"}
	return client
}

// checkReadOnly fails if the source did anything but list, or touched Secrets.
func checkReadOnly(t *testing.T, client *fake.Clientset) {
	t.Helper()
	for _, a := range client.Actions() {
		// get version, and discovery's get group and get resource (the fake's names for /api, /apis).
		discovery := a.GetVerb() == "get" && slices.Contains([]string{"version", "group", "resource"}, a.GetResource().Resource)
		if a.GetVerb() != "list" && !discovery {
			t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
		}
		if a.GetResource().Resource == "secrets" {
			t.Errorf("the live source %ss secrets", a.GetVerb())
		}
	}
}

func TestLiveConversion(t *testing.T) {
	no := false
	client := newFake(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: "u1"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a"}, AutomountServiceAccountToken: &no},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "team-a"}, Data: map[string][]byte{"password": []byte("hunter2")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "team-a"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "team-a"}, Spec: corev1.PodSpec{ServiceAccountName: "app", AutomountServiceAccountToken: &no,
			Volumes: []corev1.Volume{
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: proto.Int64(3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "extra"}}},
				}}}},
				{Name: "legacy", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-token-x7k2p"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			}}},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-reader", Namespace: "team-a", Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": "{}",
				"owner": "team-a",
			}},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
		},
		&rbacv1.ClusterRole{
			ObjectMeta:      metav1.ObjectMeta{Name: "monitoring"},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg": "true"}}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "app-read", Namespace: "team-a"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app"}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "admins"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "admins"}},
		},
	)
	snap, err := collect.NewLive(kubeclient.New(client), "prod", "https://api.example:6443", newValidator(t), collect.WithClock(clock)).Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ns := func(name string) *secureauditv1.ObjectMeta {
		return &secureauditv1.ObjectMeta{Name: name, Namespace: "team-a"}
	}
	want := &secureauditv1.SnapshotChunk{
		Header: &secureauditv1.SnapshotHeader{
			Cluster:       "prod",
			Source:        secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
			Origin:        "https://api.example:6443",
			CollectedAt:   timestamppb.New(collectedAt),
			ServerVersion: "v1.34.1", ServerVersionSource: secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY,
			// The fake's list resourceVersions; a direct list's data is as of its collection.
			ResourceVersions: map[string]string{"clusterrolebindings": "2", "clusterroles": "2", "namespaces": "2", "pods": "3",
				"rolebindings": "2", "roles": "2", "serviceaccounts": "2"},
			DataAsOf: timestamppb.New(collectedAt),
		},
		Namespaces: []*secureauditv1.Namespace{{Meta: &secureauditv1.ObjectMeta{Name: "team-a", Uid: "u1"}}},
		Roles: []*secureauditv1.Role{{
			Meta:  &secureauditv1.ObjectMeta{Name: "pod-reader", Namespace: "team-a", Annotations: map[string]string{"owner": "team-a"}},
			Rules: []*secureauditv1.PolicyRule{{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"pods"}}},
		}},
		ClusterRoles: []*secureauditv1.ClusterRole{{
			Meta:                 &secureauditv1.ObjectMeta{Name: "monitoring"},
			AggregationSelectors: []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"agg": "true"}}},
		}},
		RoleBindings: []*secureauditv1.RoleBinding{{
			Meta:     ns("app-read"),
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "pod-reader"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "app", Namespace: "team-a"}},
		}},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Name: "admins"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "admins"}},
		}},
		ServiceAccounts: []*secureauditv1.ServiceAccount{{Meta: ns("app"), AutomountToken: proto.Bool(false)}},
		Workloads: []*secureauditv1.Workload{
			{Meta: ns("api"), Kind: "Pod", ServiceAccount: "app", AutomountToken: proto.Bool(false),
				ProjectedTokens: []*secureauditv1.ProjectedToken{{Volume: "kube-api-access", Path: "token", ExpirationSeconds: 3607}},
				SecretVolumes:   []string{"extra", "app-token-x7k2p"}},
			{Meta: ns("web"), Kind: "Pod", ServiceAccount: "default"},
		},
		Trailer: &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{
			Namespaces: 1, Roles: 1, ClusterRoles: 1, RoleBindings: 1, ClusterRoleBindings: 1, ServiceAccounts: 1, Workloads: 2,
		}},
	}
	if diff := cmp.Diff(want, whole(snap), protocmp.Transform()); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	checkReadOnly(t, client)
}

func TestLivePaginates(t *testing.T) {
	const roles = 4321
	client := newFake(t)
	var limits []int64
	// The fake ignores Limit and Continue; serve roles page by page here,
	// with the offset as the continue token.
	client.PrependReactor("list", "roles", func(action k8stesting.Action) (bool, runtime.Object, error) {
		opts := action.(k8stesting.ListActionImpl).GetListOptions()
		limits = append(limits, opts.Limit)
		start := 0
		if opts.Continue != "" {
			var err error
			if start, err = strconv.Atoi(opts.Continue); err != nil {
				return true, nil, fmt.Errorf("bad continue token %q", opts.Continue)
			}
		}
		list := &rbacv1.RoleList{}
		end := min(start+int(opts.Limit), roles)
		for i := start; i < end; i++ {
			list.Items = append(list.Items, rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("role-%04d", i), Namespace: "team-a"}})
		}
		if end < roles {
			list.Continue = strconv.Itoa(end)
		}
		return true, list, nil
	})
	snap, err := collect.NewLive(kubeclient.New(client), "prod", "https://api.example:6443", newValidator(t)).Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff([]int64{2000, 2000, 2000}, limits); diff != "" {
		t.Errorf("list limits of the role pages (-want +got):\n%s", diff)
	}
	if got := len(snap.Roles); got != roles {
		t.Fatalf("roles = %d, want %d", got, roles)
	}
	for i, r := range snap.Roles {
		if want := fmt.Sprintf("role-%04d", i); r.GetMeta().GetName() != want {
			t.Fatalf("roles[%d] = %s, want %s (sorted, each once)", i, r.GetMeta().GetName(), want)
		}
	}
	checkReadOnly(t, client)
}

func TestLiveErrors(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		obj      runtime.Object
		want     string
	}{
		{
			name:     "forbidden",
			resource: "clusterrolebindings",
			want:     "list clusterrolebindings: forbidden by the test",
		},
		{
			name:     "invalid object",
			resource: "rolebindings",
			obj: &rbacv1.RoleBindingList{Items: []rbacv1.RoleBinding{{
				ObjectMeta: metav1.ObjectMeta{Name: "odd", Namespace: "team-a"},
				RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "r"},
				Subjects:   []rbacv1.Subject{{Kind: "Robot", Name: "r2d2"}},
			}}},
			want: `list rolebindings: RoleBinding team-a/odd: subjects[0]: unknown subject kind "Robot"`,
		},
		{
			name:     "contract violation",
			resource: "pods",
			obj: &corev1.PodList{Items: []corev1.Pod{{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"},
				Spec:       corev1.PodSpec{ServiceAccountName: "Bad_Name"},
			}}},
			want: "list pods: Pod team-a/web: invalid: service_account",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newFake(t)
			client.PrependReactor("list", tt.resource, func(k8stesting.Action) (bool, runtime.Object, error) {
				if tt.obj == nil {
					return true, nil, fmt.Errorf("forbidden by the test")
				}
				return true, tt.obj, nil
			})
			_, err := collect.NewLive(kubeclient.New(client), "prod", "https://api.example:6443", newValidator(t)).Load(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
