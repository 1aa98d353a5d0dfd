package store

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// SaveReviewState stores the access review state of an audit's report
// input, which SaveResult stored without it: the runner stores the input
// with its findings while the report-agent is still receiving them, and
// the review state only once the report-agent has named the report's
// Revoke findings, before the audit succeeds. ReportInput returns the
// input with it; the input itself (large: every access review subject) is
// written once.
func (s *Store) SaveReviewState(ctx context.Context, auditID string, state *secureauditv1.ReviewState) error {
	// A Report with only its review set: never zero bytes (which a driver
	// may read back as NULL, no state), even for an empty state.
	data, err := proto.Marshal(&secureauditv1.Report{Review: state})
	if err != nil {
		return fmt.Errorf("marshal review state of %s: %w", auditID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE report_inputs SET review = ? WHERE audit_id = ?`, data, auditID)
	if err != nil {
		return fmt.Errorf("store review state of %s: %w", auditID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store review state of %s: %w", auditID, err)
	} else if n != 1 {
		return fmt.Errorf("store review state of %s (no report input stored): %w", auditID, ErrNotFound)
	}
	return nil
}
