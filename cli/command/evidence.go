package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
)

// newEvidence is `secureaudit evidence`: export and verify bundles of the
// orchestrator's tamper-evident evidence log.
func newEvidence() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Export and verify bundles of the tamper-evident evidence log",
		Long: `The orchestrator appends every control result, approval, alert and audit summary to a
Merkle-tree log whose head it signs with its own Ed25519 key. export writes a bundle of a
window of the log with a freshly signed checkpoint; verify checks a bundle offline, with
no orchestrator, and names the first entry that does not verify.`,
	}
	cmd.AddCommand(newEvidenceExport(), newEvidenceVerify())
	return cmd
}

// parseTime accepts RFC 3339 or a date.
func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s %q: want RFC 3339 (2026-11-27T10:00:00Z) or a date (2026-11-27)", name, v)
}

func newEvidenceExport() *cobra.Command {
	var f auditFlags
	var from, to, out string
	cmd := &cobra.Command{
		Use:     "export",
		Short:   "Write a signed bundle of the evidence appended in [--from, --to)",
		Example: "  secureaudit evidence export --from 2026-11-01 --to 2026-12-01 --out evidence.bundle",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, certDir, err := f.connection()
			if err != nil {
				return err
			}
			fromT, err := parseTime("from", from)
			if err != nil {
				return err
			}
			toT, err := parseTime("to", to)
			if err != nil {
				return err
			}
			return exportEvidence(cmd.Context(), cmd.OutOrStdout(), addr, certDir, fromT, toT, out)
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringVar(&from, "from", "", "first time of the window, RFC 3339 or a date (default: the log's start)")
	cmd.Flags().StringVar(&to, "to", "", "end of the window, exclusive (default: now)")
	cmd.Flags().StringVar(&out, "out", "evidence.bundle", "bundle file to write")
	return cmd
}

// exportEvidence fetches a bundle, verifies it before writing it, and
// prints its public key so that the auditor can pin it.
func exportEvidence(ctx context.Context, w io.Writer, addr, certDir string, from, to time.Time, out string) error {
	c, err := client.Dial(addr, certDir)
	if err != nil {
		return err
	}
	defer c.Close()
	req := &secureauditv1.ExportEvidenceRequest{}
	if !from.IsZero() {
		req.From = timestamppb.New(from)
	}
	if !to.IsZero() {
		req.To = timestamppb.New(to)
	}
	stream, err := secureauditv1.NewEvidenceServiceClient(c.Conn()).ExportEvidence(ctx, req)
	if err != nil {
		return fmt.Errorf("export evidence: %w", err)
	}
	var data []byte
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("export evidence: %w", err)
		}
		data = append(data, resp.GetChunk()...)
	}
	b, err := evidence.ParseBundle(data)
	if err != nil {
		return err
	}
	res, err := evidence.Verify(b, "")
	if err != nil {
		return fmt.Errorf("the orchestrator sent a bundle that does not verify: %w", err)
	}
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	fmt.Fprintf(w, "wrote %s: %d entries of a log of %d\npublic key: %s\n", out, res.Entries, res.TreeSize, b.PublicKey)
	return nil
}

func newEvidenceVerify() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check a bundle offline and name the first entry that does not verify",
		Long: `verify checks the checkpoint's signature, each entry's inclusion proof against it, that no
entry of the window is missing at either edge or in between, the entries' order, and the index
per SOC 2 criterion. With --public-key (the key printed by export, or published by the
operator) it also refuses a bundle signed by any other key; without it, it says which key
signed. It needs no orchestrator.`,
		Example: "  secureaudit evidence verify evidence.bundle --public-key 'secureaudit-evidence+1a2b3c4d+AX...'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verifyBundle(cmd.OutOrStdout(), args[0], key)
		},
	}
	cmd.Flags().StringVar(&key, "public-key", "", "trusted verifier key, or @FILE to read it from a file")
	return cmd
}

func verifyBundle(w io.Writer, path, key string) error {
	if file, ok := strings.CutPrefix(key, "@"); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read public key: %w", err)
		}
		key = strings.TrimSpace(string(data))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	b, err := evidence.ParseBundle(data)
	if err != nil {
		return err
	}
	res, err := evidence.Verify(b, key)
	if err != nil {
		return fmt.Errorf("%s does not verify: %w", path, err)
	}
	fmt.Fprintf(w, "%s verifies: %d entries (from index %d) of log %s of %d entries, signed by %s\n", path, res.Entries, res.FirstIndex, res.Origin, res.TreeSize, res.KeyName)
	if key == "" {
		fmt.Fprintf(w, "warning: no --public-key given; the signature was checked against the key in the bundle:\n  %s\n", b.PublicKey)
	}
	names := make([]string, 0, len(res.Criteria))
	for c := range res.Criteria {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		fmt.Fprintf(w, "  %-6s %d entries\n", c, res.Criteria[c])
	}
	return nil
}
