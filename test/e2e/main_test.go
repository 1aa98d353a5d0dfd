// Package e2e starts the five real service binaries as separate processes on
// loopback with mTLS and exercises the system through its public API and
// command line.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"secureaudit.dev/cli/stack"
	"secureaudit.dev/test/harness"
)

// exampleCluster is the name the tests give the example cluster.
const exampleCluster = "aks-fabrikam-prod"

var update = flag.Bool("update", false, "rewrite golden files")

// env is the stack shared by the tests of this package.
var env struct {
	root   string
	binDir string
	stack  *stack.Stack
	state  string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping end-to-end tests in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	scratch, err := os.MkdirTemp("", "secureaudit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(scratch)
	env.root, err = harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.binDir, err = harness.Binaries(scratch)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.state = filepath.Join(scratch, "state")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env.stack, err = stack.Start(ctx, stack.Config{
		BinDir:      env.binDir,
		StateDir:    env.state,
		Snapshot:    filepath.Join(env.root, "examples", "cluster"),
		ClusterName: exampleCluster,
		Directory:   filepath.Join(env.root, "examples", "directory.json"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start stack:", err)
		return 1
	}
	code := m.Run()
	env.stack.Stop(10 * time.Second)
	if code != 0 {
		for _, svc := range env.stack.Services {
			fmt.Fprintf(os.Stderr, "--- %s log (last lines)\n%s\n", svc.Name, svc.Tail(30))
		}
	}
	return code
}

// addr returns the address of a service of the shared stack.
func addr(t testing.TB, name string) string {
	t.Helper()
	for _, svc := range env.stack.Services {
		if svc.Name == name {
			return svc.Addr
		}
	}
	t.Fatalf("no %s in the stack", name)
	return ""
}
