package command

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestIDTokenFlags: --device-login and --id-token-file exclude each other.
func TestIDTokenFlags(t *testing.T) {
	var f idTokenFlag
	cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error {
		_, err := f.token(cmd)
		return err
	}}
	f.register(cmd)
	cmd.SetArgs([]string{"--device-login", "--id-token-file", "alice.jwt"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "give one of them") {
		t.Fatalf("error %v, want one naming both flags", err)
	}
}
