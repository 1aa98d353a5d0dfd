package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
)

func TestRealMainRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no source", nil, "no source"},
		{"two sources", []string{"-snapshot", "x.yaml", "-in-cluster"}, "more than one source"},
		{"snapshot and kubeconfig", []string{"-snapshot", "x.yaml", "-kubeconfig", "k"}, "more than one source"},
		{"context without kubeconfig", []string{"-in-cluster", "-context", "prod"}, "-context needs -kubeconfig"},
		{"invalid cluster", []string{"-snapshot", "x.yaml", "-cluster", "prod/west"}, `-cluster "prod/west"`},
		{"stray argument", []string{"-snapshot", "x.yaml", "extra"}, "unexpected arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SECUREAUDIT_SNAPSHOT", "")
			t.Setenv("SECUREAUDIT_KUBECONFIG", "")
			t.Setenv("SECUREAUDIT_IN_CLUSTER", "false")
			err := realMain(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("realMain(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestRealMainServesSnapshot starts the service as main does, with a snapshot
// directory, and collects from it as the orchestrator.
func TestRealMainServesSnapshot(t *testing.T) {
	p := rpctest.NewPKI(t)
	dir := filepath.Join("collect", "testdata", "good", "dir")
	ctx, cancel := context.WithCancel(context.Background())
	logs, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, []string{"-snapshot", dir, "-cert-dir", p.Dir, "-listen", "127.0.0.1:0"}, io.Discard, logw)
		logw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("realMain: %v", err)
		}
	})
	// Read the log until the service says where it listens; keep draining
	// afterwards so that logging never blocks.
	addr := ""
	scanner := bufio.NewScanner(logs)
	for addr == "" && scanner.Scan() {
		var rec struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
		}
		if json.Unmarshal(scanner.Bytes(), &rec) == nil && rec.Msg == "serving" {
			addr = rec.Address
		}
	}
	if addr == "" {
		t.Fatalf("the service never logged its address (scan error %v)", scanner.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, logs) }()

	client := secureauditv1.NewRBACServiceClient(p.Dial(t, addr, identity.RBACAgent, identity.Orchestrator))
	stream, err := client.Collect(ctx, &secureauditv1.CollectRequest{AuditId: "7c9e6679-7425-40de-944b-e07fc1f90ae7"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	h := resp.GetChunk().GetHeader()
	// The cluster name defaults to the snapshot's base name.
	if h.GetCluster() != "dir" || h.GetOrigin() != dir || h.GetSource() != secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE {
		t.Errorf("header = %v, want cluster dir, origin %s, source file", h, dir)
	}
	if got := resp.GetChunk().GetTrailer().GetCounts().GetRoles(); got != 1 {
		t.Errorf("trailer counts %d roles, want 1", got)
	}
}
