package command

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// newRegression is `secureaudit controls regression`: the baseline
// regression control (SOC 2 CC4.1, CC9.2).
func newRegression() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "regression",
		Short: "Re-run the reference clusters with approved outputs through the live pipeline",
		Long: `The orchestrator embeds reference cases (examples/ and testdata/reference/) with approved
outputs. A run sends each through the live risk-agent and report-agent: deterministic findings
must match the approved ones exactly, and the model's output, when there is one, is checked
structurally. Each run is appended to the evidence log; a failure raises an alert. The
orchestrator also runs it every -regression-interval.`,
	}
	cmd.AddCommand(newRegressionRun())
	return cmd
}

func newRegressionRun() *cobra.Command {
	var f auditFlags
	var cases []string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the reference cases now; exits non-zero when one drifts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, certDir, err := f.connection()
			if err != nil {
				return err
			}
			c, err := client.Dial(addr, certDir)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := secureauditv1.NewRegressionServiceClient(c.Conn()).RunRegression(cmd.Context(), &secureauditv1.RunRegressionRequest{Cases: cases})
			if err != nil {
				return err
			}
			run := resp.GetRun()
			out := cmd.OutOrStdout()
			for _, rc := range run.GetCases() {
				verdict := "PASS"
				if !rc.GetPassed() {
					verdict = "FAIL"
				}
				fmt.Fprintf(out, "%s %-22s %d findings (approved %d), catalogue %s, reasoning %s\n", verdict, rc.GetName(), rc.GetActualFindings(), rc.GetExpectedFindings(), rc.GetCatalogueVersion(), rc.GetReasoningProvider())
				for _, l := range rc.GetNew() {
					fmt.Fprintf(out, "    new      %s\n", l)
				}
				for _, l := range rc.GetAbsent() {
					fmt.Fprintf(out, "    absent   %s\n", l)
				}
				for _, l := range rc.GetChanged() {
					fmt.Fprintf(out, "    changed  %s\n", l)
				}
				for _, l := range rc.GetProblems() {
					fmt.Fprintf(out, "    problem  %s\n", l)
				}
			}
			fmt.Fprintf(out, "run %s recorded as evidence entry %d\n", run.GetId(), run.GetEvidenceIndex())
			if !run.GetPassed() {
				var failed []string
				for _, rc := range run.GetCases() {
					if !rc.GetPassed() {
						failed = append(failed, rc.GetName())
					}
				}
				return fmt.Errorf("baseline regression failed: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringSliceVar(&cases, "case", nil, "run only these reference cases")
	return cmd
}
