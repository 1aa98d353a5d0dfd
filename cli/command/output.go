package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// Output formats of -o/--output, as kubectl names them.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// outputFlag adds -o/--output to cmd, with shell completion of its values.
func outputFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVarP(target, "output", "o", outputTable, "output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{outputTable, outputJSON, outputYAML}, cobra.ShellCompDirectiveNoFileComp
	})
}

// checkOutput rejects an unknown -o value before any work is done.
func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return usageError(fmt.Errorf("unknown output format %q: use -o table, -o json or -o yaml", format))
}

// printMessage writes m as protojson (lowerCamelCase, like report.json) or
// YAML, or calls table for the table format.
func printMessage(w io.Writer, format string, m proto.Message, table func(io.Writer) error) error {
	if format == outputTable {
		return table(w)
	}
	raw, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if format == outputYAML {
		y, err := yaml.JSONToYAML(compact.Bytes())
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// severityName is a severity as people write it: critical, high...
func severityName(s fmt.Stringer) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_"))
}

func lower(s string) string { return strings.ToLower(s) }

func trimPrefix(s, prefix string) string { return strings.TrimPrefix(s, prefix) }
