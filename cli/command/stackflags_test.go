package command

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The identity source flags refuse combinations that cannot mean anything,
// before any service starts.
func TestIdentitySourceFlags(t *testing.T) {
	snapshot := filepath.Join("..", "..", "examples", "cluster")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"scan", "--snapshot", snapshot, "--directory", "d.json", "--entra-live"}, "[directory entra-live] were all set"},
		{[]string{"up", "--snapshot", snapshot, "--directory", "d.json", "--entra-live"}, "[directory entra-live] were all set"},
		{[]string{"scan", "--snapshot", snapshot, "--cluster-resource-id", "/subscriptions/x"}, "--cluster-resource-id needs --entra-live"},
		{[]string{"scan", "--snapshot", snapshot, "--server-version", "latest"}, `--server-version "latest": not a Kubernetes version`},
		{[]string{"up", "--kubeconfig", "k", "--server-version", "v1.34.2"}, "[kubeconfig server-version] were all set"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		root := New(&out, &errOut)
		root.SetArgs(tt.args)
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}
