package collect_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
)

// makeSnapshot returns a valid snapshot of n objects spread over every kind.
func makeSnapshot(n int) *collect.Snapshot {
	s := &collect.Snapshot{
		Header: &secureauditv1.SnapshotHeader{
			Cluster:     "big",
			Source:      secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE,
			CollectedAt: timestamppb.New(collectedAt),
		},
		Skipped: map[string]uint32{"Secret": 3},
	}
	ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"}
	for i := range n {
		name := fmt.Sprintf("obj-%05d", i)
		ns := &secureauditv1.ObjectMeta{Name: name, Namespace: "team-a"}
		cluster := &secureauditv1.ObjectMeta{Name: name}
		switch i % 7 {
		case 0:
			s.Namespaces = append(s.Namespaces, &secureauditv1.Namespace{Meta: cluster})
		case 1:
			s.Roles = append(s.Roles, &secureauditv1.Role{Meta: ns})
		case 2:
			s.ClusterRoles = append(s.ClusterRoles, &secureauditv1.ClusterRole{Meta: cluster})
		case 3:
			s.RoleBindings = append(s.RoleBindings, &secureauditv1.RoleBinding{Meta: ns, RoleRef: ref})
		case 4:
			s.ClusterRoleBindings = append(s.ClusterRoleBindings, &secureauditv1.ClusterRoleBinding{Meta: cluster, RoleRef: ref})
		case 5:
			s.ServiceAccounts = append(s.ServiceAccounts, &secureauditv1.ServiceAccount{Meta: ns})
		case 6:
			s.Workloads = append(s.Workloads, &secureauditv1.Workload{Meta: ns, Kind: "Pod", ServiceAccount: "default"})
		}
	}
	return s
}

// objects counts the objects of a chunk.
func objects(c *secureauditv1.SnapshotChunk) int {
	return len(c.Namespaces) + len(c.Roles) + len(c.ClusterRoles) + len(c.RoleBindings) +
		len(c.ClusterRoleBindings) + len(c.ServiceAccounts) + len(c.Workloads)
}

// Reassemble joins chunks back into one, as a receiver does.
func reassemble(chunks []*secureauditv1.SnapshotChunk) *secureauditv1.SnapshotChunk {
	all := &secureauditv1.SnapshotChunk{}
	for _, c := range chunks {
		if c.Header != nil {
			all.Header = c.Header
		}
		if c.Trailer != nil {
			all.Trailer = c.Trailer
		}
		all.Namespaces = append(all.Namespaces, c.Namespaces...)
		all.Roles = append(all.Roles, c.Roles...)
		all.ClusterRoles = append(all.ClusterRoles, c.ClusterRoles...)
		all.RoleBindings = append(all.RoleBindings, c.RoleBindings...)
		all.ClusterRoleBindings = append(all.ClusterRoleBindings, c.ClusterRoleBindings...)
		all.ServiceAccounts = append(all.ServiceAccounts, c.ServiceAccounts...)
		all.Workloads = append(all.Workloads, c.Workloads...)
	}
	return all
}

func TestChunks(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		objects, limit int
		wantSizes      []int
	}{
		{0, 0, []int{0}},
		{1, 0, []int{1}},
		{500, 0, []int{500}},
		{501, 0, []int{500, 1}},
		{1234, 0, []int{500, 500, 234}},
		{1234, 10_000, []int{500, 500, 234}}, // the limit is capped
		{10, 4, []int{4, 4, 2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d objects limit %d", tt.objects, tt.limit), func(t *testing.T) {
			snap := makeSnapshot(tt.objects)
			chunks := snap.Chunks(tt.limit)
			var sizes []int
			for i, c := range chunks {
				sizes = append(sizes, objects(c))
				if (c.Header != nil) != (i == 0) {
					t.Errorf("chunk %d: header set = %v, want only on the first", i, c.Header != nil)
				}
				if (c.Trailer != nil) != (i == len(chunks)-1) {
					t.Errorf("chunk %d: trailer set = %v, want only on the last", i, c.Trailer != nil)
				}
				if err := v.Validate(&secureauditv1.CollectResponse{Chunk: c}); err != nil {
					t.Errorf("chunk %d breaks the contract: %v", i, err)
				}
			}
			if diff := cmp.Diff(tt.wantSizes, sizes); diff != "" {
				t.Errorf("chunk sizes (-want +got):\n%s", diff)
			}
			got := reassemble(chunks)
			c := got.Trailer.GetCounts()
			total := c.Namespaces + c.Roles + c.ClusterRoles + c.RoleBindings + c.ClusterRoleBindings + c.ServiceAccounts + c.Workloads
			if int(total) != tt.objects {
				t.Errorf("trailer counts %d objects, want %d", total, tt.objects)
			}
			if diff := cmp.Diff(whole(snap), got, protocmp.Transform()); diff != "" {
				t.Errorf("reassembled snapshot differs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChunksBoundBytes: large objects (near MaxObjectBytes) fill chunks by
// size, not only by count, so that no chunk exceeds MaxChunkBytes and every
// object arrives once, in order.
func TestChunksBoundBytes(t *testing.T) {
	s := &collect.Snapshot{Header: &secureauditv1.SnapshotHeader{Cluster: "big"}}
	blob := string(make([]byte, collect.MaxObjectBytes-4096))
	for i := range 20 {
		s.ClusterRoles = append(s.ClusterRoles, &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{
			Name: fmt.Sprintf("r%02d", i), Annotations: map[string]string{"example.com/blob": blob},
		}})
	}
	chunks := s.Chunks(0)
	var names []string
	for i, c := range chunks {
		size := 0
		for _, r := range c.GetClusterRoles() {
			size += proto.Size(r)
			names = append(names, r.GetMeta().GetName())
		}
		if size > collect.MaxChunkBytes {
			t.Errorf("chunk %d holds %d bytes of objects, more than %d", i, size, collect.MaxChunkBytes)
		}
	}
	if len(chunks) < 5 {
		t.Errorf("%d chunks for 20 objects of nearly 2 MiB, want at least 5", len(chunks))
	}
	if len(names) != 20 || names[0] != "r00" || names[19] != "r19" {
		t.Errorf("objects across chunks = %v", names)
	}
}
