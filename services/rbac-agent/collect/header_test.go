package collect_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestHeaderFreshnessRules checks the contract's rules on the header's
// resourceVersions and data age.
func TestHeaderFreshnessRules(t *testing.T) {
	v := newValidator(t)
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	header := func(edit func(h *secureauditv1.SnapshotHeader)) *secureauditv1.SnapshotChunk {
		h := &secureauditv1.SnapshotHeader{Cluster: "prod", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE, CollectedAt: timestamppb.New(at)}
		edit(h)
		return &secureauditv1.SnapshotChunk{Header: h}
	}
	tests := []struct {
		name  string
		chunk *secureauditv1.SnapshotChunk
		ok    bool
	}{
		{"file: neither", header(func(*secureauditv1.SnapshotHeader) {}), true},
		{"direct list", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"pods": "812", "roles": "790"}
			h.DataAsOf = h.CollectedAt
		}), true},
		{"cache, 30 s old", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"pods": "812"}
			h.DataAsOf = timestamppb.New(at.Add(-30 * time.Second))
			h.CacheListedAt = timestamppb.New(at.Add(-time.Hour))
		}), true},
		{"versions without data age", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"pods": "812"}
		}), false},
		{"data age without versions", header(func(h *secureauditv1.SnapshotHeader) { h.DataAsOf = h.CollectedAt }), false},
		{"data newer than the collection", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"pods": "812"}
			h.DataAsOf = timestamppb.New(at.Add(time.Second))
		}), false},
		{"listed after the collection", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"pods": "812"}
			h.DataAsOf = h.CollectedAt
			h.CacheListedAt = timestamppb.New(at.Add(time.Second))
		}), false},
		{"unknown resource", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"secrets": "812"}
			h.DataAsOf = h.CollectedAt
		}), false},
		{"empty resourceVersion", header(func(h *secureauditv1.SnapshotHeader) {
			h.ResourceVersions = map[string]string{"pods": ""}
			h.DataAsOf = h.CollectedAt
		}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(tc.chunk)
			if (err == nil) != tc.ok {
				t.Errorf("Validate = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
