package collect_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
)

// nodes are two Nodes of a cluster mid-upgrade (kubelets at 1.34 and 1.35)
// and a Role, as kubectl get -o yaml writes them.
const nodes = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: node-a}
  status: {nodeInfo: {kubeletVersion: v1.34.3}}
- apiVersion: v1
  kind: Node
  metadata: {name: node-b}
  status: {nodeInfo: {kubeletVersion: v1.35.1}}
- apiVersion: v1
  kind: Node
  metadata: {name: node-c}
  status: {nodeInfo: {kubeletVersion: v1.9.9}}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: r, namespace: team-a}
  rules: []
`

// TestServerVersionOffline: a snapshot file records --server-version when
// given, else the highest kubelet version of its Nodes, else nothing; Nodes
// themselves are counted as skipped.
func TestServerVersionOffline(t *testing.T) {
	dir := t.TempDir()
	withNodes := filepath.Join(dir, "nodes.yaml")
	if err := os.WriteFile(withNodes, []byte(nodes), 0o600); err != nil {
		t.Fatal(err)
	}
	without := filepath.Join(t.TempDir(), "role.yaml")
	if err := os.WriteFile(without, []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: team-a}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, flag string
		version          string
		source           secureauditv1.ServerVersionSource
	}{
		{"nodes", withNodes, "", "v1.35.1", secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_NODES},
		{"flag wins", withNodes, "v1.33.0", "v1.33.0", secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_FLAG},
		{"nothing", without, "", "", secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_UNSPECIFIED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := collect.NewFiles(tt.path, "test", newValidator(t), collect.WithServerVersion(tt.flag))
			for range 2 { // the second load reuses the parse
				snap, err := src.Load(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if h := snap.Header; h.GetServerVersion() != tt.version || h.GetServerVersionSource() != tt.source {
					t.Errorf("header version %q from %v, want %q from %v", h.GetServerVersion(), h.GetServerVersionSource(), tt.version, tt.source)
				}
				if tt.path == withNodes && snap.Skipped["Node"] != 3 {
					t.Errorf("skipped %v, want 3 Nodes", snap.Skipped)
				}
			}
		})
	}
}

func TestValidVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.34.2": true, "1.35": true, "v1.30.1-gke.1329003": true, "v1.29.3+k3s1": true,
		"": false, "v1": false, "latest": false, "v1.x.0": false, "v0.9": false, "v1.2.3.4": false,
	} {
		if got := collect.ValidVersion(v); got != want {
			t.Errorf("ValidVersion(%q) = %v, want %v", v, got, want)
		}
	}
}
