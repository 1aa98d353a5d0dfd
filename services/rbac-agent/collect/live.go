package collect

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// defaultPageSize is the Limit of each list request. Chosen by
// test/kube's BenchmarkLiveAudit/collect-*: on 10,332 objects in protobuf,
// pages of 250 took 0.93 s, 500 0.67 s, 2000 0.62 s and 5000 0.82 s (and
// 2000 needs 12 requests where 500 needs 27); JSON took 1.0-2.0 s.
const defaultPageSize = 2000

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

// Resources are the resources the live source reads, in the order their
// objects enter the snapshot.
var Resources = []string{"namespaces", "clusterroles", "roles", "clusterrolebindings", "rolebindings", "serviceaccounts", "pods"}

// Load lists the cluster's RBAC objects now: every resource at once (the
// lists are independent), each in pages, Pods stripped to what the rules
// read as each page arrives (StripPod). The header records each list's
// resourceVersion.
func (l *Live) Load(ctx context.Context) (*Snapshot, error) {
	now := l.opts.now()
	var (
		wg      sync.WaitGroup
		header  *secureauditv1.SnapshotHeader
		headErr error
		items   = make([][]runtime.Object, len(Resources))
		rvs     = make([]string, len(Resources))
		errs    = make([]error, len(Resources))
	)
	wg.Go(func() { header, headErr = liveHeader(ctx, l.api, l.cluster, l.origin, now) })
	for i, r := range Resources {
		wg.Go(func() { items[i], rvs[i], errs[i] = l.list(ctx, r) })
	}
	wg.Wait()
	if headErr != nil {
		return nil, headErr
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", Resources[i], err)
		}
	}
	header.ResourceVersions = make(map[string]string, len(Resources))
	for i, r := range Resources {
		if rvs[i] != "" {
			header.ResourceVersions[r] = rvs[i]
		}
	}
	if len(header.ResourceVersions) > 0 {
		header.DataAsOf = header.CollectedAt
	}
	return build(l.v, header, items)
}

// liveHeader reads the API server's version and discovery into a header.
func liveHeader(ctx context.Context, api API, cluster, origin string, now time.Time) (*secureauditv1.SnapshotHeader, error) {
	ver, err := api.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("get server version of %s: %w", origin, err)
	}
	h := &secureauditv1.SnapshotHeader{
		Cluster:             cluster,
		Source:              secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		Origin:              origin,
		CollectedAt:         timestamppb.New(now),
		ServerVersion:       ver,
		ServerVersionSource: secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY,
	}
	if d, ok := api.(Discoverer); ok {
		discover(ctx, d, h)
	}
	return h, nil
}

// build converts and validates the items of each resource (in Resources'
// order) into a snapshot with header.
func build(v Validator, header *secureauditv1.SnapshotHeader, items [][]runtime.Object) (*Snapshot, error) {
	b := newBuilder(v, header)
	for i, r := range Resources {
		for _, obj := range items[i] {
			if err := b.addObject(obj); err != nil {
				return nil, fmt.Errorf("list %s: %w", r, err)
			}
		}
	}
	return b.finish(), nil
}

// addObject converts one object of the live kinds and adds it.
func (b *builder) addObject(obj runtime.Object) error {
	key, msg, err := convertObject(obj)
	if err != nil {
		return err
	}
	return b.add("", key, msg)
}

// convertObject converts one object of the live kinds to its message of the
// contract, named by its key.
func convertObject(obj runtime.Object) (objectKey, any, error) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return objectKey{"Namespace", o.Namespace, o.Name}, convertNamespace(o), nil
	case *rbacv1.ClusterRole:
		return objectKey{"ClusterRole", o.Namespace, o.Name}, convertClusterRole(o), nil
	case *rbacv1.Role:
		return objectKey{"Role", o.Namespace, o.Name}, convertRole(o), nil
	case *rbacv1.ClusterRoleBinding:
		key := objectKey{"ClusterRoleBinding", o.Namespace, o.Name}
		crb, err := convertClusterRoleBinding(o)
		if err != nil {
			return key, nil, fmt.Errorf("%s: %w", key, err)
		}
		return key, crb, nil
	case *rbacv1.RoleBinding:
		key := objectKey{"RoleBinding", o.Namespace, o.Name}
		rb, err := convertRoleBinding(o)
		if err != nil {
			return key, nil, fmt.Errorf("%s: %w", key, err)
		}
		return key, rb, nil
	case *corev1.ServiceAccount:
		return objectKey{"ServiceAccount", o.Namespace, o.Name}, convertServiceAccount(o), nil
	case *corev1.Pod:
		return objectKey{"Pod", o.Namespace, o.Name}, convertPod(o), nil
	}
	return objectKey{}, nil, fmt.Errorf("unexpected list item %T", obj)
}

// discover reads the API server's discovery into the header. Discovery that
// fails, in part (an aggregated API that is down) or whole (a cluster that
// withdrew system:discovery), is marked partial and never fails the
// collection: consumers fall back to the built-in resources for what is
// missing.
func discover(ctx context.Context, d Discoverer, h *secureauditv1.SnapshotHeader) {
	groups, lists, partial, err := d.Discovery(ctx)
	if err != nil {
		h.ApiResourcesPartial = true
		return
	}
	res, truncated := ConvertDiscovery(groups, lists)
	h.ApiResources = res
	h.ApiResourcesPartial = partial || truncated
}

// list returns every item of resource, a page of pageSize at a time, and
// the list's resourceVersion (a continued page is served at the first
// page's). Pods are stripped (StripPod) page by page. A continue token that
// expires mid-way (the server compacted the revision of the first page)
// fails the collection rather than mixing revisions; the next Collect
// starts over.
func (l *Live) list(ctx context.Context, resource string) ([]runtime.Object, string, error) {
	opts := metav1.ListOptions{Limit: l.opts.pageSize}
	var (
		out []runtime.Object
		rv  string
	)
	for {
		obj, err := l.api.List(ctx, resource, opts)
		if err != nil {
			if opts.Continue != "" && apierrors.IsResourceExpired(err) {
				return nil, "", fmt.Errorf("continue token expired after %d items per page: %w", opts.Limit, err)
			}
			return nil, "", err
		}
		if err := meta.EachListItem(obj, func(o runtime.Object) error {
			if p, ok := o.(*corev1.Pod); ok {
				o = StripPod(p)
			}
			out = append(out, o)
			return nil
		}); err != nil {
			return nil, "", err
		}
		acc, err := meta.ListAccessor(obj)
		if err != nil {
			return nil, "", fmt.Errorf("list %T: %w", obj, err)
		}
		if rv == "" {
			rv = acc.GetResourceVersion()
		}
		if acc.GetContinue() == "" {
			return out, rv, nil
		}
		opts.Continue = acc.GetContinue()
	}
}
