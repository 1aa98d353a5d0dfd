package snapshot

import (
	"errors"
	"fmt"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// ErrInput marks errors caused by the sender's stream of chunks rather than
// by the receiver; callers map it to InvalidArgument.
var ErrInput = errors.New("invalid input")

// Assembler receives the chunks of one snapshot in order and checks the
// stream's framing: the first chunk carries the header, only the first does,
// the last carries the trailer, nothing follows it, and the trailer's counts
// match the objects that arrived. Directory chunks may arrive at any time.
// An Assembler is used by one goroutine.
type Assembler struct {
	chunks  []*secureauditv1.SnapshotChunk
	dir     []*secureauditv1.DirectoryChunk
	counts  *secureauditv1.ObjectCounts
	trailer *secureauditv1.SnapshotTrailer
}

// NewAssembler returns an empty Assembler.
func NewAssembler() *Assembler {
	return &Assembler{counts: &secureauditv1.ObjectCounts{}}
}

// AddSnapshot takes the next snapshot chunk.
func (a *Assembler) AddSnapshot(c *secureauditv1.SnapshotChunk) error {
	n := len(a.chunks) + 1
	switch {
	case a.trailer != nil:
		return fmt.Errorf("%w: snapshot chunk %d arrived after the trailer", ErrInput, n)
	case n == 1 && c.GetHeader() == nil:
		return fmt.Errorf("%w: the first snapshot chunk must carry the header", ErrInput)
	case n > 1 && c.GetHeader() != nil:
		return fmt.Errorf("%w: snapshot chunk %d carries a second header", ErrInput, n)
	}
	a.chunks = append(a.chunks, c)
	a.counts.Namespaces += uint32(len(c.GetNamespaces()))
	a.counts.Roles += uint32(len(c.GetRoles()))
	a.counts.ClusterRoles += uint32(len(c.GetClusterRoles()))
	a.counts.RoleBindings += uint32(len(c.GetRoleBindings()))
	a.counts.ClusterRoleBindings += uint32(len(c.GetClusterRoleBindings()))
	a.counts.ServiceAccounts += uint32(len(c.GetServiceAccounts()))
	a.counts.Workloads += uint32(len(c.GetWorkloads()))
	a.trailer = c.GetTrailer()
	return nil
}

// AddDirectory takes a directory chunk.
func (a *Assembler) AddDirectory(c *secureauditv1.DirectoryChunk) {
	a.dir = append(a.dir, c)
}

// Counts returns the counts of the objects that arrived so far.
func (a *Assembler) Counts() *secureauditv1.ObjectCounts { return a.counts }

// Snapshot checks that the snapshot is complete and builds it. Its errors
// wrap ErrInput and start with "snapshot incomplete".
func (a *Assembler) Snapshot() (*Snapshot, error) {
	if len(a.chunks) == 0 {
		return nil, fmt.Errorf("%w: snapshot incomplete: no snapshot chunks arrived", ErrInput)
	}
	if a.trailer == nil {
		return nil, fmt.Errorf("%w: snapshot incomplete: no trailer after %d chunks", ErrInput, len(a.chunks))
	}
	want, got := a.trailer.GetCounts(), a.counts
	for _, c := range []struct {
		kind      string
		want, got uint32
	}{
		{"namespaces", want.GetNamespaces(), got.GetNamespaces()},
		{"roles", want.GetRoles(), got.GetRoles()},
		{"cluster roles", want.GetClusterRoles(), got.GetClusterRoles()},
		{"role bindings", want.GetRoleBindings(), got.GetRoleBindings()},
		{"cluster role bindings", want.GetClusterRoleBindings(), got.GetClusterRoleBindings()},
		{"service accounts", want.GetServiceAccounts(), got.GetServiceAccounts()},
		{"workloads", want.GetWorkloads(), got.GetWorkloads()},
	} {
		if c.want != c.got {
			return nil, fmt.Errorf("%w: snapshot incomplete: trailer counts %d %s, %d arrived", ErrInput, c.want, c.kind, c.got)
		}
	}
	return Build(a.chunks, a.dir), nil
}
