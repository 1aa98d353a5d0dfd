package collect

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Memo keeps each live object converted to its message of the contract and
// checked against it (controls characters, size, protovalidate), keyed by
// the object's resource, UID and resourceVersion, so that a snapshot built
// again from a watch cache converts and validates only the objects that
// changed since the previous one. The API server gives an object a new
// resourceVersion at every write, so a changed object misses the memo and
// is converted afresh; an object gone from the cache is dropped from the
// memo when the next snapshot is built without it. An object without a UID
// or resourceVersion is converted every time.
//
// The messages it holds are shared with every snapshot built from it: they
// must not be changed once built (nothing does: snapshots are only sorted,
// chunked and sent).
type Memo struct {
	mu      sync.Mutex
	entries map[memoKey]memoEntry
	// converted counts the objects converted by the latest build (misses).
	converted int
}

// memoKey identifies one version of one object.
type memoKey struct {
	resource int // index in Resources
	uid, rv  string
}

// memoEntry is an object converted and checked.
type memoEntry struct {
	key objectKey
	msg any
	v   verdict
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{entries: map[memoKey]memoEntry{}} }

// Build returns the snapshot of items (each of Resources, in its order)
// with header, as build does, taking each object's conversion and check
// from the memo when it holds that version of the object. Builds are
// serialised.
func (m *Memo) Build(v Validator, header *secureauditv1.SnapshotHeader, items [][]runtime.Object) (*Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := newBuilder(v, header)
	next := make(map[memoKey]memoEntry, len(m.entries))
	converted := 0
	for i, r := range Resources {
		for _, obj := range items[i] {
			mk, ok := memoKeyOf(i, obj)
			if !ok {
				converted++
				if err := b.addObject(obj); err != nil {
					return nil, fmt.Errorf("list %s: %w", r, err)
				}
				continue
			}
			e, hit := m.entries[mk]
			if !hit {
				converted++
				key, msg, err := convertObject(obj)
				if err != nil {
					return nil, fmt.Errorf("list %s: %w", r, err)
				}
				if err := b.duplicate("", key); err != nil {
					return nil, fmt.Errorf("list %s: %w", r, err)
				}
				vd, err := b.check(key, msg)
				if err != nil {
					return nil, fmt.Errorf("list %s: %s: %s", r, key, err.Error())
				}
				e = memoEntry{key: key, msg: msg, v: vd}
			} else if err := b.duplicate("", e.key); err != nil {
				return nil, fmt.Errorf("list %s: %w", r, err)
			}
			next[mk] = e
			if err := b.apply("", e.key, e.msg, e.v); err != nil {
				return nil, fmt.Errorf("list %s: %w", r, err)
			}
		}
	}
	m.entries, m.converted = next, converted
	return b.finish(), nil
}

// Converted returns how many objects the latest Build converted (the
// others came from the memo).
func (m *Memo) Converted() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.converted
}

// memoKeyOf returns obj's memo key; false when it has no UID or
// resourceVersion.
func memoKeyOf(resource int, obj runtime.Object) (memoKey, bool) {
	a, err := meta.Accessor(obj)
	if err != nil || a.GetUID() == "" || a.GetResourceVersion() == "" {
		return memoKey{}, false
	}
	return memoKey{resource: resource, uid: string(a.GetUID()), rv: a.GetResourceVersion()}, true
}
