package collect

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/runtime"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// View is the cluster as a watch cache holds it at one moment: a consistent
// cut of every resource the live source reads.
type View struct {
	// Items holds the objects of each of Resources, in its order.
	Items [][]runtime.Object
	// ResourceVersions is, per resource, the resourceVersion of the latest
	// change the cache applied.
	ResourceVersions map[string]string
	// Age is how old the data may be: zero while every watch is open (a
	// change arrives within moments), else the time since the oldest
	// closed watch closed.
	Age time.Duration
	// ListedAt is when the cache last listed the cluster.
	ListedAt time.Time
}

// Viewer returns the cluster from memory, or an error when it cannot vouch
// for its data (not synced yet, or a watch closed for too long).
type Viewer interface {
	View(ctx context.Context) (*View, error)
}

// HeaderTTL is how long a Cached source reuses the API server's version and
// discovery before it reads them again.
const HeaderTTL = 5 * time.Minute

// Cached reads snapshots from a watch cache (a Viewer) and makes no request
// to the API server for them, but for its version and discovery once every
// HeaderTTL. While the cache cannot vouch for its data it lists directly
// with fallback, and says so in the log; the header tells which: a snapshot
// from the cache carries cache_listed_at. It keeps a Memo of the objects it
// converted, so that each snapshot converts and validates only the objects
// written since the previous one.
type Cached struct {
	view     Viewer
	api      API
	fallback *Live
	log      *slog.Logger
	cluster  string
	origin   string
	v        Validator
	opts     options
	memo     *Memo

	mu     sync.Mutex
	header *secureauditv1.SnapshotHeader // version and discovery
	readAt time.Time
}

// NewCached returns a source reading view, with api for the API server's
// version and discovery and fallback for a direct list.
func NewCached(view Viewer, api API, fallback *Live, log *slog.Logger, cluster, origin string, v Validator, opts ...Option) *Cached {
	return &Cached{view: view, api: api, fallback: fallback, log: log, cluster: cluster, origin: origin, v: v, opts: newOptions(opts), memo: NewMemo()}
}

// Load builds a snapshot from the cache, or lists directly when the cache
// cannot vouch for its data.
func (c *Cached) Load(ctx context.Context) (*Snapshot, error) {
	view, err := c.view.View(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "watch cache not used; listing the cluster directly", "reason", err.Error())
		snap, lerr := c.fallback.Load(ctx)
		if lerr != nil {
			return nil, fmt.Errorf("%w (the watch cache was not used: %v)", lerr, err)
		}
		return snap, nil
	}
	now := c.opts.now()
	h, err := c.headerAt(ctx, now)
	if err != nil {
		return nil, err
	}
	h.CollectedAt = timestamppb.New(now)
	h.ResourceVersions = view.ResourceVersions
	h.DataAsOf = timestamppb.New(now.Add(-max(view.Age, 0)))
	listed := view.ListedAt
	if listed.After(now) {
		listed = now
	}
	h.CacheListedAt = timestamppb.New(listed)
	// Only the objects changed since the previous snapshot are converted
	// and validated again.
	return c.memo.Build(c.v, h, view.Items)
}

// headerAt returns a copy of the header with the API server's version and
// discovery, read again when older than HeaderTTL.
func (c *Cached) headerAt(ctx context.Context, now time.Time) (*secureauditv1.SnapshotHeader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.header == nil || now.Sub(c.readAt) >= HeaderTTL || now.Before(c.readAt) {
		h, err := liveHeader(ctx, c.api, c.cluster, c.origin, now)
		if err != nil {
			return nil, err
		}
		c.header, c.readAt = h, now
	}
	return proto.CloneOf(c.header), nil
}
