package command

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEntraExportRunsAgent checks that `entra export` runs the entra-agent
// of --bin-dir with the flags translated one to one, and refuses to run
// without principals or without the binary.
func TestEntraExportRunsAgent(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(bin, "entra-agent"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{
			name: "every flag",
			args: []string{"entra", "export", "--bin-dir", bin, "--out", "d.json", "--group", "g1", "--group", "g2", "--user", "u@x", "--client-id", "c1",
				"--cluster-resource-id", "/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/k", "--tenant-id", "t", "--allow-partial"},
			want: strings.Join([]string{"export", "-out", "d.json", "-group", "g1", "-group", "g2", "-user", "u@x", "-client-id", "c1",
				"-cluster-resource-id", "/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/k", "-tenant-id", "t", "-allow-partial"}, "\n") + "\n",
		},
		{name: "no principals", args: []string{"entra", "export", "--bin-dir", bin}, wantErr: "name at least one"},
		{name: "no binary", args: []string{"entra", "export", "--bin-dir", t.TempDir(), "--group", "g"}, wantErr: "entra-agent binary not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := New(&out, &errOut)
			root.SetArgs(tt.args)
			err := root.ExecuteContext(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("execute: %v (stderr %s)", err, errOut.String())
			}
			if out.String() != tt.want {
				t.Errorf("agent args:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
}
