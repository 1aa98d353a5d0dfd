// Package watch keeps the rbac-agent's view of a live cluster in memory: a
// client-go shared informer per resource the snapshot reads (list once,
// then watch), objects stripped to what the rules read (collect.Strip), so
// that an audit reads a consistent snapshot from memory instead of listing
// the cluster. It knows how fresh its data is: a watch that is open
// delivers every change within moments; one that closed (the API server
// went away, or the watch fell behind and must re-list) leaves the data as
// of the moment it closed, and past a bound the cache refuses to vouch for
// it. The informers re-watch, and re-list when the API server no longer
// holds their resourceVersion, by themselves.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"secureaudit.dev/services/rbac-agent/collect"
)

// DefaultMaxStaleness is how long a watch may stay closed before the cache
// stops vouching for its data.
const DefaultMaxStaleness = 30 * time.Second

// ErrNotSynced is returned by View before every informer has listed.
var ErrNotSynced = errors.New("the watch cache has not synced yet")

// Cache is the informer cache. Build it with New, run it with Run.
type Cache struct {
	log       *slog.Logger
	maxStale  time.Duration
	now       func() time.Time
	informers []cache.SharedIndexInformer
	regs      []cache.ResourceEventHandlerRegistration

	mu      sync.Mutex
	objs    []map[string]runtime.Object // by collect.Resources index, by key
	rv      []string                    // resourceVersion of the latest change applied
	base    []string                    // resourceVersion of the latest list (or end of initial events)
	open    []int                       // watches open
	since   []time.Time                 // while none is open: data complete up to then
	listed  time.Time                   // the latest list (or watch with initial events)
	reopens int                         // watches opened after the first of each resource
}

// Option configures a Cache.
type Option func(*Cache)

// WithMaxStaleness sets how long a watch may stay closed before View
// refuses (DefaultMaxStaleness).
func WithMaxStaleness(d time.Duration) Option {
	return func(c *Cache) {
		if d > 0 {
			c.maxStale = d
		}
	}
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option {
	return func(c *Cache) { c.now = now }
}

// New builds the informers of collect.Resources over client. Nothing is
// read before Run.
func New(client kubernetes.Interface, log *slog.Logger, opts ...Option) (*Cache, error) {
	n := len(collect.Resources)
	c := &Cache{log: log, maxStale: DefaultMaxStaleness, now: time.Now,
		objs: make([]map[string]runtime.Object, n), rv: make([]string, n), base: make([]string, n), open: make([]int, n), since: make([]time.Time, n)}
	for _, opt := range opts {
		opt(c)
	}
	for i, r := range collect.Resources {
		c.objs[i] = map[string]runtime.Object{}
		lw, example, err := c.listWatch(client, i, r)
		if err != nil {
			return nil, err
		}
		inf := cache.NewSharedIndexInformer(lw, example, 0, cache.Indexers{})
		if err := inf.SetTransform(collect.Strip); err != nil {
			return nil, fmt.Errorf("informer %s: %w", r, err)
		}
		if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *cache.Reflector, err error) {
			log.WarnContext(ctx, "watch failed; the informer lists again", "resource", r, "error", err.Error())
		}); err != nil {
			return nil, fmt.Errorf("informer %s: %w", r, err)
		}
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.put(i, obj) },
			UpdateFunc: func(_, obj any) { c.put(i, obj) },
			DeleteFunc: func(obj any) { c.remove(i, obj) },
		})
		if err != nil {
			return nil, fmt.Errorf("informer %s: %w", r, err)
		}
		c.informers = append(c.informers, inf)
		c.regs = append(c.regs, reg)
	}
	return c, nil
}

// Run runs the informers until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, inf := range c.informers {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	start := c.now()
	if cache.WaitForCacheSync(ctx.Done(), c.synced) {
		c.log.InfoContext(ctx, "watch cache synced", "duration", c.now().Sub(start), "objects", c.count())
	}
	wg.Wait()
	return nil
}

// synced reports whether every handler has seen its informer's first list.
func (c *Cache) synced() bool {
	for _, r := range c.regs {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

func (c *Cache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.objs {
		n += len(m)
	}
	return n
}

// Reopens counts the watches opened again after the first of each
// resource (a watch's normal timeout, a closed connection, a re-list).
func (c *Cache) Reopens() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reopens
}

// Fresh says whether View would serve: nil when the cache has synced and no
// watch has been closed for longer than the bound.
func (c *Cache) Fresh() error {
	if !c.synced() {
		return ErrNotSynced
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.asOf(c.now())
	return err
}

// Watching says whether every resource has a watch open: nil when so, else
// an error naming the first resource without one. A watch that failed is
// retried with client-go's backoff (up to a minute while the API server
// refuses), so after an outage Fresh may hold again, thanks to a list,
// before every watch is back.
func (c *Cache) Watching() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.open {
		if n == 0 {
			return fmt.Errorf("no watch of %s is open", collect.Resources[i])
		}
	}
	return nil
}

// asOf returns the time up to which the cache holds every change, or an
// error when that is longer ago than the bound. c.mu is held.
func (c *Cache) asOf(now time.Time) (time.Time, error) {
	asOf, oldest := now, -1
	for i := range c.open {
		if c.open[i] == 0 && c.since[i].Before(asOf) {
			asOf, oldest = c.since[i], i
		}
	}
	if oldest >= 0 && now.Sub(asOf) > c.maxStale {
		return asOf, fmt.Errorf("the watch of %s has been closed since %s (%s, more than %s): the cache may miss changes",
			collect.Resources[oldest], asOf.UTC().Format(time.RFC3339), now.Sub(asOf).Round(time.Second), c.maxStale)
	}
	return asOf, nil
}

// SyncWait bounds how long View waits for the first sync.
const SyncWait = 30 * time.Second

// View returns a consistent cut of the cache: every resource as of one
// moment, with the resourceVersion of the latest change applied to each and
// the time up to which it holds every change. Before the first sync it
// waits for it (until ctx ends, at most SyncWait), so that an audit started
// with the agent reads the cache rather than listing a second time; it
// fails when the cache has not synced then, and while a watch has been
// closed for longer than the bound.
func (c *Cache) View(ctx context.Context) (*collect.View, error) {
	if !c.synced() {
		wctx, cancel := context.WithTimeout(ctx, SyncWait)
		ok := cache.WaitForCacheSync(wctx.Done(), c.synced)
		cancel()
		if !ok {
			return nil, ErrNotSynced
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	asOf, err := c.asOf(now)
	if err != nil {
		return nil, err
	}
	v := &collect.View{Items: make([][]runtime.Object, len(c.objs)), ResourceVersions: map[string]string{}, Age: now.Sub(asOf), ListedAt: c.listed}
	for i, m := range c.objs {
		items := make([]runtime.Object, 0, len(m))
		for _, o := range m {
			items = append(items, o)
		}
		v.Items[i] = items
		rv := c.rv[i]
		if rv == "" {
			// No change applied: the resource was empty at its list
			// (and a later object would have set rv once applied).
			rv = c.base[i]
		}
		if rv != "" {
			v.ResourceVersions[collect.Resources[i]] = rv
		}
	}
	return v, nil
}

// put stores an added or updated object.
func (c *Cache) put(i int, obj any) {
	o, ok := obj.(runtime.Object)
	if !ok {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.objs[i][key] = o
	c.note(i, obj)
}

// remove deletes an object (or the object of a tombstone).
func (c *Cache) remove(i int, obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.objs[i], key)
	c.note(i, obj)
}

// note keeps the highest resourceVersion of the changes applied (numeric,
// as the API server's are; another form replaces it). c.mu is held.
func (c *Cache) note(i int, obj any) {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetResourceVersion() == "" {
		return
	}
	rv := m.GetResourceVersion()
	cur, err1 := strconv.ParseUint(c.rv[i], 10, 64)
	next, err2 := strconv.ParseUint(rv, 10, 64)
	if c.rv[i] == "" || err1 != nil || err2 != nil || next > cur {
		c.rv[i] = rv
	}
}

// listWatch returns the list and watch of resource i over client, each
// noting when the cache listed and which watches are open.
func (c *Cache) listWatch(client kubernetes.Interface, i int, resource string) (*cache.ListWatch, runtime.Object, error) {
	var (
		list    func(context.Context, metav1.ListOptions) (runtime.Object, error)
		watch   func(context.Context, metav1.ListOptions) (apiwatch.Interface, error)
		example runtime.Object
	)
	core, rbac, all := client.CoreV1(), client.RbacV1(), metav1.NamespaceAll
	switch resource {
	case "namespaces":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Namespaces().List(ctx, o)
		}
		watch, example = core.Namespaces().Watch, &corev1.Namespace{}
	case "serviceaccounts":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.ServiceAccounts(all).List(ctx, o)
		}
		watch, example = core.ServiceAccounts(all).Watch, &corev1.ServiceAccount{}
	case "pods":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Pods(all).List(ctx, o)
		}
		watch, example = core.Pods(all).Watch, &corev1.Pod{}
	case "roles":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return rbac.Roles(all).List(ctx, o)
		}
		watch, example = rbac.Roles(all).Watch, &rbacv1.Role{}
	case "clusterroles":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return rbac.ClusterRoles().List(ctx, o)
		}
		watch, example = rbac.ClusterRoles().Watch, &rbacv1.ClusterRole{}
	case "rolebindings":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return rbac.RoleBindings(all).List(ctx, o)
		}
		watch, example = rbac.RoleBindings(all).Watch, &rbacv1.RoleBinding{}
	case "clusterrolebindings":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return rbac.ClusterRoleBindings().List(ctx, o)
		}
		watch, example = rbac.ClusterRoleBindings().Watch, &rbacv1.ClusterRoleBinding{}
	default:
		return nil, nil, fmt.Errorf("watch %s: not a resource the rbac-agent reads", resource)
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			obj, err := list(ctx, o)
			if err == nil {
				rv := ""
				if acc, aerr := meta.ListAccessor(obj); aerr == nil {
					rv = acc.GetResourceVersion()
				}
				c.listedNow(i, rv)
			}
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
			w, err := watch(ctx, o)
			if err != nil {
				return nil, err
			}
			return c.track(i, w), nil
		},
	}, example, nil
}

// listedNow notes a complete list of resource i at resourceVersion rv (a
// list call, or the end of a watch's initial events).
func (c *Cache) listedNow(i int, rv string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.listed = now
	if rv != "" {
		c.base[i] = rv
	}
	if c.open[i] == 0 {
		c.since[i] = now
	}
}

// track counts w as open until its result channel closes.
func (c *Cache) track(i int, w apiwatch.Interface) apiwatch.Interface {
	c.mu.Lock()
	if !c.since[i].IsZero() || c.open[i] > 0 {
		c.reopens++
	}
	c.open[i]++
	c.mu.Unlock()
	t := &tracked{Interface: w, out: make(chan apiwatch.Event), done: make(chan struct{})}
	go func() {
		defer close(t.out)
		defer func() {
			c.mu.Lock()
			c.open[i]--
			if c.open[i] == 0 {
				c.since[i] = c.now()
			}
			c.mu.Unlock()
		}()
		for e := range w.ResultChan() {
			if e.Type == apiwatch.Bookmark {
				if m, err := meta.Accessor(e.Object); err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
					c.listedNow(i, m.GetResourceVersion())
				}
			}
			select {
			case t.out <- e:
			case <-t.done:
				for range w.ResultChan() { // until the stopped watch closes
				}
				return
			}
		}
	}()
	return t
}

// tracked is a watch whose end the cache notes.
type tracked struct {
	apiwatch.Interface
	out  chan apiwatch.Event
	done chan struct{}
	once sync.Once
}

func (t *tracked) ResultChan() <-chan apiwatch.Event { return t.out }

func (t *tracked) Stop() {
	t.once.Do(func() { close(t.done) })
	t.Interface.Stop()
}
