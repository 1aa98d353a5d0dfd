package collect

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/pager"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// defaultPageSize is the Limit of each list request.
const defaultPageSize = 500

// InCluster is the context name reported for the in-cluster configuration.
const InCluster = "in-cluster"

// userAgent identifies the rbac-agent in the API server's audit log.
const userAgent = "secureaudit-rbac-agent"

// WithPageSize sets the Limit of each list request of a live source.
func WithPageSize(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.pageSize = n
		}
	}
}

// Endpoint describes the API server a client talks to.
type Endpoint struct {
	// Host is the API server's URL.
	Host string
	// Context is the kubeconfig context used, or InCluster.
	Context string
}

// Connect builds a client from the kubeconfig file at path, using
// kubeContext or the file's current context, or from the pod's in-cluster
// configuration when inCluster is set.
func Connect(path, kubeContext string, inCluster bool) (kubernetes.Interface, Endpoint, error) {
	var (
		cfg *rest.Config
		ep  Endpoint
		err error
	)
	if inCluster {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, ep, fmt.Errorf("in-cluster config: %w", err)
		}
		ep.Context = InCluster
	} else {
		loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
			&clientcmd.ConfigOverrides{CurrentContext: kubeContext},
		)
		raw, err := loader.RawConfig()
		if err != nil {
			return nil, ep, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		ep.Context = raw.CurrentContext
		if kubeContext != "" {
			ep.Context = kubeContext
		}
		cfg, err = loader.ClientConfig()
		if err != nil {
			return nil, ep, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	}
	cfg.UserAgent = userAgent
	// Paginated lists of a large cluster are many requests; the default
	// 5 QPS would make a collection take minutes.
	cfg.QPS, cfg.Burst = 20, 40
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, ep, fmt.Errorf("kubernetes client: %w", err)
	}
	ep.Host = cfg.Host
	return client, ep, nil
}

// Live reads a snapshot from an API server, listing each kind in pages. It
// lists Namespaces, ServiceAccounts, Pods and the four RBAC kinds, and never
// Secrets.
type Live struct {
	client  kubernetes.Interface
	cluster string
	origin  string
	v       Validator
	opts    options
}

// NewLive returns a source reading through client for the cluster named
// cluster; origin (the API server's URL) goes into the header.
func NewLive(client kubernetes.Interface, cluster, origin string, v Validator, opts ...Option) *Live {
	return &Live{client: client, cluster: cluster, origin: origin, v: v, opts: newOptions(opts)}
}

// Load lists the cluster's RBAC objects now.
func (l *Live) Load(ctx context.Context) (*Snapshot, error) {
	var ver *version.Info
	var err error
	if d, ok := l.client.Discovery().(interface {
		ServerVersionWithContext(context.Context) (*version.Info, error)
	}); ok {
		ver, err = d.ServerVersionWithContext(ctx)
	} else {
		ver, err = l.client.Discovery().ServerVersion()
	}
	if err != nil {
		return nil, fmt.Errorf("get server version of %s: %w", l.origin, err)
	}
	b := newBuilder(l.v, &secureauditv1.SnapshotHeader{
		Cluster:       l.cluster,
		Source:        secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		Origin:        l.origin,
		CollectedAt:   timestamppb.New(l.opts.now()),
		ServerVersion: ver.GitVersion,
	})
	core, rbac := l.client.CoreV1(), l.client.RbacV1()
	lists := []struct {
		resource string
		list     pager.ListPageFunc
		add      func(runtime.Object) error
	}{
		{"namespaces", page(core.Namespaces().List), each(func(o *corev1.Namespace) error {
			return b.add("", objectKey{"Namespace", o.Namespace, o.Name}, convertNamespace(o))
		})},
		{"clusterroles", page(rbac.ClusterRoles().List), each(func(o *rbacv1.ClusterRole) error {
			return b.add("", objectKey{"ClusterRole", o.Namespace, o.Name}, convertClusterRole(o))
		})},
		{"roles", page(rbac.Roles(metav1.NamespaceAll).List), each(func(o *rbacv1.Role) error {
			return b.add("", objectKey{"Role", o.Namespace, o.Name}, convertRole(o))
		})},
		{"clusterrolebindings", page(rbac.ClusterRoleBindings().List), each(func(o *rbacv1.ClusterRoleBinding) error {
			key := objectKey{"ClusterRoleBinding", o.Namespace, o.Name}
			crb, err := convertClusterRoleBinding(o)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return b.add("", key, crb)
		})},
		{"rolebindings", page(rbac.RoleBindings(metav1.NamespaceAll).List), each(func(o *rbacv1.RoleBinding) error {
			key := objectKey{"RoleBinding", o.Namespace, o.Name}
			rb, err := convertRoleBinding(o)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return b.add("", key, rb)
		})},
		{"serviceaccounts", page(core.ServiceAccounts(metav1.NamespaceAll).List), each(func(o *corev1.ServiceAccount) error {
			return b.add("", objectKey{"ServiceAccount", o.Namespace, o.Name}, convertServiceAccount(o))
		})},
		{"pods", page(core.Pods(metav1.NamespaceAll).List), each(func(o *corev1.Pod) error {
			return b.add("", objectKey{"Pod", o.Namespace, o.Name}, convertPod(o))
		})},
	}
	for _, r := range lists {
		p := pager.New(r.list)
		p.PageSize = l.opts.pageSize
		if err := p.EachListItem(ctx, metav1.ListOptions{}, r.add); err != nil {
			return nil, fmt.Errorf("list %s: %w", r.resource, err)
		}
	}
	return b.finish(), nil
}

// page adapts a typed List method to the pager.
func page[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error)) pager.ListPageFunc {
	return func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return list(ctx, opts)
	}
}

// each adapts a typed item function to the pager's runtime.Object items.
func each[T runtime.Object](fn func(T) error) func(runtime.Object) error {
	return func(obj runtime.Object) error {
		o, ok := obj.(T)
		if !ok {
			var want T
			return fmt.Errorf("unexpected list item %T, want %T", obj, want)
		}
		return fn(o)
	}
}
