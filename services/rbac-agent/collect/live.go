package collect

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// defaultPageSize is the Limit of each list request.
const defaultPageSize = 500

// WithPageSize sets the Limit of each list request of a live source.
func WithPageSize(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.pageSize = n
		}
	}
}

// API is what the live source needs of an API server: its version and one
// page of a list of a resource in all namespaces (namespaces,
// serviceaccounts, pods, roles, clusterroles, rolebindings,
// clusterrolebindings). kubeclient.Client implements it with client-go,
// which this package does not import.
type API interface {
	ServerVersion(ctx context.Context) (string, error)
	List(ctx context.Context, resource string, opts metav1.ListOptions) (runtime.Object, error)
}

// Live reads a snapshot from an API server, listing each kind in pages. It
// lists Namespaces, ServiceAccounts, Pods and the four RBAC kinds, and never
// Secrets.
type Live struct {
	api     API
	cluster string
	origin  string
	v       Validator
	opts    options
}

// NewLive returns a source reading through api for the cluster named
// cluster; origin (the API server's URL) goes into the header.
func NewLive(api API, cluster, origin string, v Validator, opts ...Option) *Live {
	return &Live{api: api, cluster: cluster, origin: origin, v: v, opts: newOptions(opts)}
}

// Load lists the cluster's RBAC objects now.
func (l *Live) Load(ctx context.Context) (*Snapshot, error) {
	ver, err := l.api.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("get server version of %s: %w", l.origin, err)
	}
	b := newBuilder(l.v, &secureauditv1.SnapshotHeader{
		Cluster:             l.cluster,
		Source:              secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		Origin:              l.origin,
		CollectedAt:         timestamppb.New(l.opts.now()),
		ServerVersion:       ver,
		ServerVersionSource: secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY,
	})
	if d, ok := l.api.(Discoverer); ok {
		l.discover(ctx, d, b.snap.Header)
	}
	lists := []struct {
		resource string
		add      func(runtime.Object) error
	}{
		{"namespaces", each(func(o *corev1.Namespace) error {
			return b.add("", objectKey{"Namespace", o.Namespace, o.Name}, convertNamespace(o))
		})},
		{"clusterroles", each(func(o *rbacv1.ClusterRole) error {
			return b.add("", objectKey{"ClusterRole", o.Namespace, o.Name}, convertClusterRole(o))
		})},
		{"roles", each(func(o *rbacv1.Role) error {
			return b.add("", objectKey{"Role", o.Namespace, o.Name}, convertRole(o))
		})},
		{"clusterrolebindings", each(func(o *rbacv1.ClusterRoleBinding) error {
			key := objectKey{"ClusterRoleBinding", o.Namespace, o.Name}
			crb, err := convertClusterRoleBinding(o)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return b.add("", key, crb)
		})},
		{"rolebindings", each(func(o *rbacv1.RoleBinding) error {
			key := objectKey{"RoleBinding", o.Namespace, o.Name}
			rb, err := convertRoleBinding(o)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return b.add("", key, rb)
		})},
		{"serviceaccounts", each(func(o *corev1.ServiceAccount) error {
			return b.add("", objectKey{"ServiceAccount", o.Namespace, o.Name}, convertServiceAccount(o))
		})},
		{"pods", each(func(o *corev1.Pod) error {
			return b.add("", objectKey{"Pod", o.Namespace, o.Name}, convertPod(o))
		})},
	}
	for _, r := range lists {
		if err := l.list(ctx, r.resource, r.add); err != nil {
			return nil, fmt.Errorf("list %s: %w", r.resource, err)
		}
	}
	return b.finish(), nil
}

// discover reads the API server's discovery into the header. Discovery that
// fails, in part (an aggregated API that is down) or whole (a cluster that
// withdrew system:discovery), is marked partial and never fails the
// collection: consumers fall back to the built-in resources for what is
// missing.
func (l *Live) discover(ctx context.Context, d Discoverer, h *secureauditv1.SnapshotHeader) {
	groups, lists, partial, err := d.Discovery(ctx)
	if err != nil {
		h.ApiResourcesPartial = true
		return
	}
	res, truncated := ConvertDiscovery(groups, lists)
	h.ApiResources = res
	h.ApiResourcesPartial = partial || truncated
}

// list calls add on every item of resource, a page of pageSize at a time.
// A continue token that expires mid-way (the server compacted the revision
// of the first page) fails the collection rather than mixing revisions; the
// next Collect starts over.
func (l *Live) list(ctx context.Context, resource string, add func(runtime.Object) error) error {
	opts := metav1.ListOptions{Limit: l.opts.pageSize}
	for {
		obj, err := l.api.List(ctx, resource, opts)
		if err != nil {
			if opts.Continue != "" && apierrors.IsResourceExpired(err) {
				return fmt.Errorf("continue token expired after %d items per page: %w", opts.Limit, err)
			}
			return err
		}
		if err := meta.EachListItem(obj, add); err != nil {
			return err
		}
		acc, err := meta.ListAccessor(obj)
		if err != nil {
			return fmt.Errorf("list %T: %w", obj, err)
		}
		if acc.GetContinue() == "" {
			return nil
		}
		opts.Continue = acc.GetContinue()
	}
}

// each adapts a typed item function to the list's runtime.Object items.
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
