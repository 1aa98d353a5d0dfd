package store

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// SaveSchedule creates or replaces a schedule.
func (s *Store) SaveSchedule(ctx context.Context, sc *secureauditv1.Schedule) error {
	data, err := proto.Marshal(sc)
	if err != nil {
		return fmt.Errorf("marshal schedule: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schedules (name, data) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data`, sc.GetName(), data); err != nil {
		return fmt.Errorf("save schedule %s: %w", sc.GetName(), err)
	}
	return nil
}

// ListSchedules returns every schedule, by name.
func (s *Store) ListSchedules(ctx context.Context) ([]*secureauditv1.Schedule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM schedules ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.Schedule
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		sc := &secureauditv1.Schedule{}
		if err := proto.Unmarshal(data, sc); err != nil {
			return nil, fmt.Errorf("unmarshal schedule: %w", err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// DeleteSchedule removes a schedule; it wraps ErrNotFound when there is none.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM schedules WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %s: %w", name, ErrNotFound)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM schedule_runs WHERE name = ?`, name); err != nil {
		return fmt.Errorf("delete runs of schedule %s: %w", name, err)
	}
	return nil
}

// PruneAudits deletes the finished audits of a cluster created before a
// time, with their findings, reports (and report inputs), events and model calls, and returns
// how many it deleted. The evidence log keeps its own record of each.
func (s *Store) PruneAudits(ctx context.Context, cluster string, before time.Time) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM audits WHERE created_ns < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune audits: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune audits: %w", err)
		}
		a, err := unmarshalAudit(data)
		if err != nil {
			rows.Close()
			return 0, err
		}
		switch a.GetState() {
		case secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, secureauditv1.AuditState_AUDIT_STATE_FAILED, secureauditv1.AuditState_AUDIT_STATE_CANCELLED:
			if a.GetCluster() == cluster {
				ids = append(ids, id)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("prune audits: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("prune audits: %w", err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		for _, table := range []string{"events", "report_chunks", "reports", "report_inputs", "findings", "audit_digests", "model_calls", "audits"} {
			col := "audit_id"
			if table == "audits" {
				col = "id"
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE "+col+" = ?", id); err != nil {
				return 0, fmt.Errorf("prune audit %s from %s: %w", id, table, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune audits: %w", err)
	}
	return len(ids), nil
}
