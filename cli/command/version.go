package command

import (
	"fmt"

	"github.com/spf13/cobra"

	"secureaudit.dev/platform/run"
)

// newVersion is `secureaudit version`: the module version and the VCS
// revision the binary was built from (runtime/debug.ReadBuildInfo).
func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version and VCS revision this binary was built from",
		Long: `version prints the main module, its version ("(devel)" when built from a work tree),
the VCS revision and commit time it was built from ("(modified)" with uncommitted changes)
and the Go version. Every service binary prints the same with -version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "secureaudit %s\n", run.ReadBuildInfo())
			return err
		},
	}
}
