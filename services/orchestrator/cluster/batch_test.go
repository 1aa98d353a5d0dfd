package cluster

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestFleetBatches splits fleets into batches for RenderFleetStream: the
// batches cover every cluster once, in order; none holds more clusters than
// the contract allows; each message (RenderFleetStreamRequest) is within
// the bound, measured by proto.Size of the message itself.
func TestFleetBatches(t *testing.T) {
	fleet := func(n, labelBytes int) []*secureauditv1.FleetCluster {
		var out []*secureauditv1.FleetCluster
		for i := range n {
			out = append(out, &secureauditv1.FleetCluster{Name: fmt.Sprintf("aks-%05d", i),
				Labels: map[string]string{"owner": strings.Repeat("x", labelBytes+i%7)}})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		clusters []*secureauditv1.FleetCluster
		limit    int
		batches  int // 0: not checked
	}{
		{name: "empty", clusters: nil, limit: 0, batches: 0},
		{name: "one small batch", clusters: fleet(3, 10), limit: 0, batches: 1},
		{name: "count bound", clusters: fleet(1201, 10), limit: 0, batches: 3},
		{name: "byte bound", clusters: fleet(300, 200), limit: 10_000},
		{name: "one cluster per batch", clusters: fleet(5, 1000), limit: 1100, batches: 5},
		{name: "varint length boundaries", clusters: fleet(400, 120), limit: 16_400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{messageLimit: tc.limit}
			got, err := s.fleetBatches(tc.clusters)
			if err != nil {
				t.Fatal(err)
			}
			if tc.batches > 0 && len(got) != tc.batches {
				t.Errorf("%d batches, want %d", len(got), tc.batches)
			}
			next := 0
			for _, b := range got {
				if b[0] != next || b[1] <= b[0] {
					t.Fatalf("batch %v after cluster %d", b, next)
				}
				next = b[1]
				if n := b[1] - b[0]; n > fleetBatch {
					t.Errorf("batch %v of %d clusters, over %d", b, n, fleetBatch)
				}
				msg := &secureauditv1.RenderFleetStreamRequest{Part: &secureauditv1.RenderFleetStreamRequest_Clusters{
					Clusters: &secureauditv1.FleetClusterBatch{Clusters: tc.clusters[b[0]:b[1]]}}}
				if size := proto.Size(msg); size > s.limit() || size > fleetBatchBytes {
					t.Errorf("batch %v is a message of %d bytes, over %d", b, size, min(s.limit(), fleetBatchBytes))
				}
			}
			if next != len(tc.clusters) {
				t.Errorf("batches cover %d of %d clusters", next, len(tc.clusters))
			}
		})
	}
	// A cluster alone over the bound is refused, naming it.
	s := &Server{messageLimit: 500}
	if _, err := s.fleetBatches(fleet(2, 1000)); err == nil || !strings.Contains(err.Error(), "cluster aks-00000 of the fleet report alone") {
		t.Errorf("a cluster over the bound: %v", err)
	}
}
