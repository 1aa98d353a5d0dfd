package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
)

// TestReportFilesArePrivate: the reports an audit writes, and the directory
// created for them, are for their owner alone (they say who can do what in
// the cluster).
func TestReportFilesArePrivate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := filepath.Join(t.TempDir(), "reports")
	res, err := c.Run(ctx, client.Options{OutDir: out, Formats: client.Formats})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{out: 0o700}
	for _, f := range res.Files {
		want[f] = 0o600
	}
	if len(want) < 3 {
		t.Fatalf("wrote %v", res.Files)
	}
	for p, mode := range want {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != mode {
			t.Errorf("%s mode %04o, want %04o", p, got, mode)
		}
	}
}
