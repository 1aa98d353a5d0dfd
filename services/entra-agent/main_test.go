package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/run"
)

// TestRealMainFailsFast checks that a bad directory stops the agent before it
// serves, with an error naming the file (and the field, for invalid content).
func TestRealMainFailsFast(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.json")
	if err := os.WriteFile(invalid, []byte(`{"tenantId": "not-a-tenant"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "invalid directory", args: []string{"-directory", invalid}, want: []string{invalid, "tenant_id"}},
		{name: "missing directory", args: []string{"-directory", missing}, want: []string{missing}},
		{name: "no credentials", args: []string{"-directory", "../../examples/directory.json"}, want: []string{"no credentials"}},
		{name: "self-check interval", args: []string{"-live", "-self-check-interval", "0s"}, want: []string{"-self-check-interval must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := realMain(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("realMain() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("realMain() error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestSelfCheckIntervalEnv: the environment sets -self-check-interval's
// default, a bad value fails naming the variable, and a flag wins.
func TestSelfCheckIntervalEnv(t *testing.T) {
	env := run.EnvName("self-check-interval")
	t.Setenv(env, "0s")
	if err := realMain(context.Background(), []string{"-live"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-self-check-interval must be positive") {
		t.Errorf("%s=0s: error %v, want the interval refused", env, err)
	}
	t.Setenv(env, "often")
	if err := realMain(context.Background(), []string{"-live"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), env) {
		t.Errorf("%s=often: error %v, want one naming the variable", env, err)
	}
	t.Setenv(env, "0s")
	err := realMain(context.Background(), []string{"-directory", "../../examples/directory.json", "-self-check-interval", "1m"}, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "self-check-interval") {
		t.Errorf("a flag over %s=0s: error %v, want the interval accepted (and the start to fail later, without credentials)", env, err)
	}
}

// TestRealMainServes starts the agent as main does, with the example
// directory, and resolves a principal through it as the orchestrator.
func TestRealMainServes(t *testing.T) {
	p := rpctest.NewPKI(t)
	ctx, cancel := context.WithCancel(context.Background())
	logR, logW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, []string{
			"-listen", "127.0.0.1:0", "-cert-dir", p.Dir, "-directory", "../../examples/directory.json",
		}, io.Discard, logW)
		logW.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("realMain() = %v, want nil after the context ends", err)
		}
	}()

	// The agent logs its address once it listens.
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			var rec struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Address
			}
		}
		close(addr)
	}()
	a, ok := <-addr
	if !ok {
		t.Fatal("the agent stopped without serving")
	}
	client := secureauditv1.NewEntraServiceClient(p.Dial(t, a, identity.EntraAgent, identity.Orchestrator))
	stream, err := client.Resolve(ctx, &secureauditv1.ResolveRequest{
		AuditId:    "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f",
		Principals: []*secureauditv1.Principal{{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "Carol.Ops@fabrikamcorp.onmicrosoft.com"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var upns []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		for _, u := range resp.GetChunk().GetUsers() {
			upns = append(upns, u.GetUserPrincipalName())
		}
	}
	// Carol, and everyone the example's AKS cluster lets in through Azure
	// alone (admin group, role assignments, and through PIM: Priya, an
	// eligible member of the admin group, and Marco, eligible for the AKS
	// Cluster Admin Role), sorted by object ID.
	want := []string{
		"jun.tanaka@fabrikamcorp.onmicrosoft.com", "carol.ops@fabrikamcorp.onmicrosoft.com", "dana.kowalski@fabrikamcorp.onmicrosoft.com",
		"omar.haddad@fabrikamcorp.onmicrosoft.com", "nina.berg@fabrikamcorp.onmicrosoft.com", "lena.fischer@fabrikamcorp.onmicrosoft.com",
		"tom.weber@fabrikamcorp.onmicrosoft.com", "priya.raman@fabrikamcorp.onmicrosoft.com", "marco.rossi@fabrikamcorp.onmicrosoft.com",
	}
	if !slices.Equal(upns, want) {
		t.Errorf("resolved users = %q, want %q", upns, want)
	}
}
