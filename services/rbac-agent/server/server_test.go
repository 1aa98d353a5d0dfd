package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/server"
)

const auditID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

// serve starts the real rbac-agent server over loopback mTLS, with the
// manifest it ships with, and returns a client dialled as caller.
func serve(t *testing.T, src server.Source, caller string, opts ...server.Option) secureauditv1.RBACServiceClient {
	t.Helper()
	manifest, err := scopes.Manifest(identity.RBACAgent)
	if err != nil {
		t.Fatal(err)
	}
	p := rpctest.NewPKI(t)
	srv := server.New(rpctest.Logger(t), src, opts...)
	addr := p.Serve(t, identity.RBACAgent, manifest, func(s *grpc.Server) {
		secureauditv1.RegisterRBACServiceServer(s, srv)
	})
	return secureauditv1.NewRBACServiceClient(p.Dial(t, addr, identity.RBACAgent, caller))
}

// collectAll receives every chunk of one Collect call.
func collectAll(t *testing.T, client secureauditv1.RBACServiceClient) ([]*secureauditv1.SnapshotChunk, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.Collect(ctx, &secureauditv1.CollectRequest{AuditId: auditID})
	if err != nil {
		return nil, err
	}
	var chunks []*secureauditv1.SnapshotChunk
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, resp.GetChunk())
	}
}

// reassemble joins the chunks, checking that the header comes first and the
// trailer last, as the orchestrator does.
func reassemble(t *testing.T, chunks []*secureauditv1.SnapshotChunk) *secureauditv1.SnapshotChunk {
	t.Helper()
	all := &secureauditv1.SnapshotChunk{}
	for i, c := range chunks {
		if (c.Header != nil) != (i == 0) {
			t.Errorf("chunk %d: header set = %v, want only on the first", i, c.Header != nil)
		}
		if (c.Trailer != nil) != (i == len(chunks)-1) {
			t.Errorf("chunk %d: trailer set = %v, want only on the last", i, c.Trailer != nil)
		}
		if n := objects(c); n > collect.MaxChunkObjects {
			t.Errorf("chunk %d holds %d objects", i, n)
		}
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

func objects(c *secureauditv1.SnapshotChunk) int {
	return len(c.Namespaces) + len(c.Roles) + len(c.ClusterRoles) + len(c.RoleBindings) +
		len(c.ClusterRoleBindings) + len(c.ServiceAccounts) + len(c.Workloads)
}

func newValidator(t *testing.T) *validation.Validator {
	t.Helper()
	v, err := validation.New(rpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCollectSnapshotFiles(t *testing.T) {
	v := newValidator(t)
	dir := filepath.Join("..", "collect", "testdata", "good")
	tests := []struct {
		name       string
		path       string
		limit      int
		wantChunks int
	}{
		{"directory in chunks of two", filepath.Join(dir, "dir"), 2, 2},
		{"List in one chunk", filepath.Join(dir, "list.yaml"), 0, 1},
		{"empty snapshot", filepath.Join(dir, "empty-list.yaml"), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := collect.NewFiles(tt.path, "test", v)
			client := serve(t, src, identity.Orchestrator, server.WithChunkLimit(tt.limit))
			chunks, err := collectAll(t, client)
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			if len(chunks) != tt.wantChunks {
				t.Errorf("got %d chunks, want %d", len(chunks), tt.wantChunks)
			}
			got := reassemble(t, chunks)
			snap, err := src.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := reassemble(t, snap.Chunks(0))
			opt := protocmp.IgnoreFields(&secureauditv1.SnapshotHeader{}, "collected_at")
			if diff := cmp.Diff(want, got, protocmp.Transform(), opt); diff != "" {
				t.Errorf("collected snapshot (-want +got):\n%s", diff)
			}
		})
	}
}

// fixed is a source returning the same snapshot every time.
type fixed struct{ snap *collect.Snapshot }

func (f fixed) Load(context.Context) (*collect.Snapshot, error) { return f.snap, nil }

func TestCollectLargeSnapshot(t *testing.T) {
	const pods = 1234
	snap := &collect.Snapshot{Header: &secureauditv1.SnapshotHeader{
		Cluster:     "big",
		Source:      secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		CollectedAt: timestamppb.Now(),
	}}
	for i := range pods {
		snap.Workloads = append(snap.Workloads, &secureauditv1.Workload{
			Meta:           &secureauditv1.ObjectMeta{Name: fmt.Sprintf("pod-%04d", i), Namespace: "team-a"},
			Kind:           "Pod",
			ServiceAccount: "default",
		})
	}
	client := serve(t, fixed{snap}, identity.Orchestrator)
	chunks, err := collectAll(t, client)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if len(chunks) != 3 {
		t.Errorf("got %d chunks, want 3", len(chunks))
	}
	got := reassemble(t, chunks)
	if n := got.GetTrailer().GetCounts().GetWorkloads(); n != pods {
		t.Errorf("trailer counts %d workloads, want %d", n, pods)
	}
	if len(got.Workloads) != pods {
		t.Errorf("received %d workloads, want %d", len(got.Workloads), pods)
	}
}

func TestCollectErrors(t *testing.T) {
	v := newValidator(t)
	bad := filepath.Join("..", "collect", "testdata", "bad", "role-no-namespace.yaml")
	good := filepath.Join("..", "collect", "testdata", "good", "single.yaml")
	tests := []struct {
		name     string
		path     string
		caller   string
		wantCode codes.Code
		wantMsg  []string
	}{
		{"broken snapshot", bad, identity.Orchestrator, codes.FailedPrecondition, []string{bad, "Role orphan", "must have a namespace"}},
		{"caller other than the orchestrator", good, identity.RiskAgent, codes.PermissionDenied, nil},
		{"the CLI", good, identity.CLI, codes.PermissionDenied, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := serve(t, collect.NewFiles(tt.path, "test", v), tt.caller)
			chunks, err := collectAll(t, client)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("Collect = %d chunks, %v; want code %v", len(chunks), err, tt.wantCode)
			}
			if len(chunks) != 0 {
				t.Errorf("received %d chunks before the error", len(chunks))
			}
			msg := status.Convert(err).Message()
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}
