// Package directory answers "who are these principals?": it resolves the users
// and groups RBAC subjects name into the directory objects behind them, from a
// Source, and serves the answer as EntraService in bounded chunks.
package directory

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Source resolves principals against a directory. Principals it cannot find
// go to Result.Unresolved; an error means the lookup itself failed.
type Source interface {
	Resolve(ctx context.Context, principals []*secureauditv1.Principal) (*Result, error)
}

// ClusterSource is a Source that reads the Azure access of the AKS cluster a
// request names (ResolveRequest.cluster_resource_id), not only of one
// cluster: the live tenant. A snapshot is of one cluster and is no
// ClusterSource.
type ClusterSource interface {
	ResolveCluster(ctx context.Context, cluster string, principals []*secureauditv1.Principal) (*Result, error)
}

// ClusterError is a request's AKS cluster that a ClusterSource refuses to
// read: a resource ID that is no well-formed managedClusters ID, or one in
// a subscription the source may not read (InvalidArgument), or a new one
// beyond the clusters the source keeps (Full: ResourceExhausted). The
// server answers it with that code and the message, which names the ID.
type ClusterError struct {
	// ID is the resource ID as the request named it.
	ID string
	// Reason says what is wrong with it.
	Reason string
	// Full says the ID is well-formed but the source keeps as many
	// clusters as it may (tenant.MaxCheckedClusters).
	Full bool
}

func (e *ClusterError) Error() string {
	return "cluster resource id " + strconv.Quote(e.ID) + ": " + e.Reason
}

// Result is what a Source knows of a set of principals: each list sorted by
// object ID (Unresolved by kind, then name) and free of duplicates. The
// messages may be shared with the Source and must not be modified.
type Result struct {
	Users             []*secureauditv1.DirectoryUser
	Groups            []*secureauditv1.DirectoryGroup
	ServicePrincipals []*secureauditv1.DirectoryServicePrincipal
	Unresolved        []*secureauditv1.Principal
	RoleAssignments   []*secureauditv1.AzureRoleAssignment
	// Errors are the lookups that failed after retries; with any, the
	// result is partial.
	Errors []*secureauditv1.LookupError
	// ExcessPermissions are the Graph application permissions of the
	// source's own credential beyond the read-only set, sorted.
	ExcessPermissions []string
	// Cluster is the AKS cluster's access configuration, nil when the
	// source does not know the cluster.
	Cluster *secureauditv1.AksCluster
	// DenyAssignments are the Azure deny assignments at, above and below
	// the cluster's scope, sorted by ID, at most MaxDenyAssignments.
	DenyAssignments []*secureauditv1.AzureDenyAssignment
	// TenantID is the Entra tenant the source reads, empty when it cannot
	// tell; ClusterResourceID the AKS cluster whose Azure access it reads,
	// empty when none. The orchestrator checks both against the audited
	// cluster's registration.
	TenantID, ClusterResourceID string
}

// MaxDenyAssignments bounds the deny assignments of an answer, as
// DirectoryChunk's protovalidate rules do: the first chunk carries them.
const MaxDenyAssignments = 2000

// Chunk limits, as DirectoryChunk's protovalidate rules set them.
const (
	MaxChunkUsers             = 500
	MaxChunkGroups            = 500
	MaxChunkServicePrincipals = 500
	MaxChunkUnresolved        = 1000
	MaxChunkRoleAssignments   = 500
	MaxChunkErrors            = 1000
)

// Chunks splits r into DirectoryChunks within the chunk limits, filling every
// list of a chunk in parallel, in order; every chunk says whether the result
// is partial. It returns at least one chunk, so a
// receiver always gets an answer, even an empty one.
func Chunks(r *Result) []*secureauditv1.DirectoryChunk {
	n := max(
		parts(len(r.Users), MaxChunkUsers),
		parts(len(r.Groups), MaxChunkGroups),
		parts(len(r.ServicePrincipals), MaxChunkServicePrincipals),
		parts(len(r.Unresolved), MaxChunkUnresolved),
		parts(len(r.RoleAssignments), MaxChunkRoleAssignments),
		parts(len(r.Errors), MaxChunkErrors),
		1,
	)
	chunks := make([]*secureauditv1.DirectoryChunk, n)
	for i := range chunks {
		chunks[i] = &secureauditv1.DirectoryChunk{
			Users:             part(r.Users, i, MaxChunkUsers),
			Groups:            part(r.Groups, i, MaxChunkGroups),
			ServicePrincipals: part(r.ServicePrincipals, i, MaxChunkServicePrincipals),
			Unresolved:        part(r.Unresolved, i, MaxChunkUnresolved),
			RoleAssignments:   part(r.RoleAssignments, i, MaxChunkRoleAssignments),
			Errors:            part(r.Errors, i, MaxChunkErrors),
			Partial:           len(r.Errors) > 0,
		}
	}
	// The permissions list is small (bounded by Graph's roles); the first
	// chunk carries it.
	chunks[0].ExcessPermissions = r.ExcessPermissions
	chunks[0].AksCluster = r.Cluster
	chunks[0].TenantId = r.TenantID
	chunks[0].ClusterResourceId = r.ClusterResourceID
	chunks[0].DenyAssignments = r.DenyAssignments[:min(len(r.DenyAssignments), MaxDenyAssignments)]
	return chunks
}

// parts is the number of chunks of size n that hold total items.
func parts(total, n int) int {
	return (total + n - 1) / n
}

// part returns the i-th slice of s of size n, nil when s has no such slice.
func part[T any](s []T, i, n int) []T {
	lo := i * n
	if lo >= len(s) {
		return nil
	}
	return s[lo:min(lo+n, len(s))]
}

// SortCredentials orders a service principal's credentials as every
// Source returns them: by kind (secrets first), then key ID.
func SortCredentials(cs []*secureauditv1.ApplicationCredential) {
	slices.SortStableFunc(cs, func(a, b *secureauditv1.ApplicationCredential) int {
		return cmp.Or(cmp.Compare(a.GetKind(), b.GetKind()), strings.Compare(strings.ToLower(a.GetKeyId()), strings.ToLower(b.GetKeyId())))
	})
}
