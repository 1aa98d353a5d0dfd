package command

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
)

// newEntra is `secureaudit entra`: work with the Entra ID directory behind
// a cluster's principals.
func newEntra() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "entra",
		Short: "Work with the Entra ID directory behind the cluster's principals",
	}
	cmd.AddCommand(newEntraExport())
	return cmd
}

// newEntraExport runs `entra-agent export`: the Microsoft Graph and Azure
// SDKs live in the entra-agent alone, so the CLI runs that binary rather
// than link them.
func newEntraExport() *cobra.Command {
	var out, binDir, clusterID, tenantID string
	var groups, users, clients []string
	var allowPartial bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a directory snapshot of the named principals from a live tenant",
		Long: `export resolves the named groups (through every level of nesting, with owners), users and
workload identity client IDs in a live Entra tenant through Microsoft Graph, and the Azure role
assignments on the cluster (--cluster-resource-id) through Azure Resource Manager, and writes
them as a directory snapshot file: the file ` + "`secureaudit scan --directory`" + ` and
` + "`entra-agent -directory`" + ` read, so that an audit can be reproduced offline.

It runs the entra-agent binary (next to this executable, or in --bin-dir) with the Azure
credential of the environment: workload identity in a pod, otherwise the default chain
(AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, managed identity, az login). The
credential needs only the read-only Graph permissions and the Reader role listed in the README.
Lookups that fail after retries stop the export unless --allow-partial.`,
		Example: `  secureaudit entra export --out directory.json \
    --group c145efc9-e82b-46fe-b60b-a02a33b3a2c0 --user carol.ops@fabrikamcorp.onmicrosoft.com \
    --client-id 478c0813-e243-4bca-9af3-63d4930fa261 \
    --cluster-resource-id /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerService/managedClusters/<name>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(groups)+len(users)+len(clients) == 0 {
				return errors.New("name at least one --group, --user or --client-id")
			}
			bin := binDir
			if bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the entra-agent binary: %w", err)
				}
				bin = filepath.Dir(exe)
			}
			agent := filepath.Join(bin, "entra-agent")
			if _, err := os.Stat(agent); err != nil {
				return fmt.Errorf("entra-agent binary not found in %s (run `make build`, or pass --bin-dir): %w", bin, err)
			}
			args := []string{"export", "-out", out}
			for _, g := range groups {
				args = append(args, "-group", g)
			}
			for _, u := range users {
				args = append(args, "-user", u)
			}
			for _, c := range clients {
				args = append(args, "-client-id", c)
			}
			if clusterID != "" {
				args = append(args, "-cluster-resource-id", clusterID)
			}
			if tenantID != "" {
				args = append(args, "-tenant-id", tenantID)
			}
			if allowPartial {
				args = append(args, "-allow-partial")
			}
			run := exec.CommandContext(cmd.Context(), agent, args...)
			run.Stdout, run.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := run.Run(); err != nil {
				return fmt.Errorf("entra-agent export: %w", err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "directory.json", "directory snapshot file to write")
	fl.StringSliceVar(&groups, "group", nil, "Entra group object ID (repeatable)")
	fl.StringSliceVar(&users, "user", nil, "user principal name or object ID (repeatable)")
	fl.StringSliceVar(&clients, "client-id", nil, "workload identity client ID (azure.workload.identity/client-id; repeatable)")
	fl.StringVar(&clusterID, "cluster-resource-id", "", "the AKS cluster's ARM resource ID, for its Azure role assignments")
	fl.StringVar(&tenantID, "tenant-id", "", "tenant ID recorded in the snapshot (default: the credential's)")
	fl.BoolVar(&allowPartial, "allow-partial", false, "write the snapshot even if lookups failed")
	fl.StringVar(&binDir, "bin-dir", "", "directory of the service binaries (default: the directory of this executable)")
	return cmd
}
