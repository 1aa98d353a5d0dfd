package store

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// ReplaceReportInput replaces the report input SaveResult stored for an
// audit. The runner stores the input with its findings while the
// report-agent is still receiving them, and the access review state only
// once the report-agent has named the report's Revoke findings: it then
// stores the input again, whole, before the audit succeeds.
func (s *Store) ReplaceReportInput(ctx context.Context, auditID string, input *secureauditv1.Report) error {
	data, err := proto.Marshal(input)
	if err != nil {
		return fmt.Errorf("marshal report input of %s: %w", auditID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE report_inputs SET data = ? WHERE audit_id = ?`, data, auditID)
	if err != nil {
		return fmt.Errorf("replace report input of %s: %w", auditID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("replace report input of %s: %w", auditID, err)
	} else if n != 1 {
		return fmt.Errorf("replace report input of %s: %w", auditID, ErrNotFound)
	}
	return nil
}
