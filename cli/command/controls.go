package command

import "github.com/spf13/cobra"

// newControls is `secureaudit controls`: the agentic controls of the
// orchestrator.
func newControls() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controls",
		Short: "Inspect and run the orchestrator's controls",
	}
	cmd.AddCommand(newRegression(), newTokens(), newAnomalies())
	return cmd
}
