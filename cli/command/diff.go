package command

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/history"
)

func newDiff() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "diff OLD_REPORT.json NEW_REPORT.json",
		Short: "Show which findings are new, resolved or changed between two reports",
		Long: `diff compares two report.json files of the same cluster by finding ID (a stable
fingerprint of the rule and the objects involved): findings only in the new report are new,
findings only in the old one are resolved, and findings in both whose severity, role, scope,
matched rules, controls or remediation differ are changed. Platform-managed findings are left
out, as in the report's "Changes since the previous audit" section.

The orchestrator makes the same comparison itself for every audit against the previous audit
of the same cluster: see that section of report.md/report.html, and baselineState in
report.sarif.`,
		Example: `  # what changed between last week's and today's audit
  secureaudit diff last-week/report.json out/report.json

  # the same as JSON for a pipeline
  secureaudit diff -o json last-week/report.json out/report.json | jq '.newFindingIds | length'`,
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			before, err := readReport(args[0])
			if err != nil {
				return err
			}
			after, err := readReport(args[1])
			if err != nil {
				return err
			}
			if before.GetCluster() != after.GetCluster() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: comparing reports of different clusters (%s and %s)\n", before.GetCluster(), after.GetCluster())
			}
			h := history.Compare(all(before), all(after))
			h.PreviousAuditId = before.GetAuditId()
			h.PreviousGeneratedAt = before.GetGeneratedAt()
			return printMessage(cmd.OutOrStdout(), output, h, func(w io.Writer) error {
				return diffTable(w, h, after)
			})
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func all(r *secureauditv1.Report) []*secureauditv1.Finding {
	return append(append([]*secureauditv1.Finding(nil), r.GetFindings()...), r.GetInfrastructureFindings()...)
}

// readReport reads a report.json.
func readReport(path string) (*secureauditv1.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	r := &secureauditv1.Report{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%s is not a report.json written by secureaudit (-format json): %w", path, err)
	}
	return r, nil
}

func diffTable(w io.Writer, h *secureauditv1.AuditHistory, after *secureauditv1.Report) error {
	byID := map[string]*secureauditv1.Finding{}
	for _, f := range after.GetFindings() {
		byID[f.GetId()] = f
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%d new, %d changed, %d resolved\n", len(h.GetNewFindingIds()), len(h.GetChanged()), len(h.GetResolved()))
	if len(h.GetNewFindingIds())+len(h.GetChanged())+len(h.GetResolved()) == 0 {
		return tw.Flush()
	}
	fmt.Fprintln(tw, "\nCHANGE\tSEVERITY\tRULE\tFINDING\tSUBJECT\tTITLE")
	row := func(change string, f *secureauditv1.Finding, sev string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", change, sev, f.GetRuleId(), f.GetId(), subjectName(f.GetSubject()), f.GetTitle())
	}
	for _, id := range h.GetNewFindingIds() {
		f := byID[id]
		row("new", f, severityName(f.GetSeverity()))
	}
	for _, c := range h.GetChanged() {
		f := byID[c.GetFindingId()]
		sev := severityName(f.GetSeverity())
		if c.GetPreviousSeverity() != f.GetSeverity() {
			sev = severityName(c.GetPreviousSeverity()) + "->" + sev
		}
		row("changed ("+strings.Join(c.GetFields(), ",")+")", f, sev)
	}
	for _, f := range h.GetResolved() {
		row("resolved", f, severityName(f.GetSeverity()))
	}
	return tw.Flush()
}

func subjectName(s *secureauditv1.SubjectRef) string {
	if s == nil {
		return "-"
	}
	kind := strings.TrimPrefix(s.GetKind().String(), "SUBJECT_KIND_")
	name := s.GetName()
	if s.GetNamespace() != "" {
		name = s.GetNamespace() + "/" + name
	}
	return strings.ToLower(kind) + ":" + name
}
