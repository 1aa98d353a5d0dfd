package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
)

// Audits are held by the replica that claimed them: lease_owner names it and
// lease_expires_ns says until when, renewed while it runs. On PostgreSQL,
// claims lock the rows they look at with FOR UPDATE SKIP LOCKED, so replicas
// claiming at once never wait on each other nor take the same audit; on
// SQLite the pool's one connection serialises them.

var (
	statePending = int32(secureauditv1.AuditState_AUDIT_STATE_PENDING)
	stateRunning = int32(secureauditv1.AuditState_AUDIT_STATE_RUNNING)
)

// skipLocked is the row-locking clause of a claim in the store's dialect.
func (s *Store) skipLocked() string {
	if s.db.Dialect() == storage.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ClaimAudit takes the oldest pending audit that no replica holds (never
// claimed, or its holder's lease expired before now: a takeover) for owner
// until now+lease, and returns it; nil when there is none. An audit whose
// cluster has another audit held by a live lease waits: two audits of one
// cluster never overlap, whichever replicas run them.
func (s *Store) ClaimAudit(ctx context.Context, owner string, now time.Time, lease time.Duration) (*secureauditv1.Audit, error) {
	return s.claim(ctx, `SELECT id, cluster, data FROM audits a WHERE state = ? AND (lease_owner = '' OR lease_expires_ns < ?)
		AND NOT EXISTS (`+clusterHeld+`) ORDER BY created_ns, id LIMIT 1`,
		[]any{statePending, now.UnixNano(), statePending, stateRunning, now.UnixNano()}, owner, now, lease)
}

// clusterHeld finds another audit of a's cluster held by a live lease; its
// arguments are the two unfinished states and the time.
const clusterHeld = `SELECT 1 FROM audits b WHERE b.cluster = a.cluster AND b.id <> a.id
	AND b.state IN (?, ?) AND b.lease_owner <> '' AND b.lease_expires_ns >= ?`

// Pending counts the audits waiting to be claimed, on every replica.
func (s *Store) Pending(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM audits WHERE state = ?`, statePending).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending audits: %w", err)
	}
	return n, nil
}

// ClaimAuditID takes one pending audit for owner, as ClaimAudit; nil when it
// is not pending or another replica holds it. (Cancel uses it: a cancelled
// audit never runs, so its cluster does not matter.)
func (s *Store) ClaimAuditID(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (*secureauditv1.Audit, error) {
	return s.claim(ctx, `SELECT id, cluster, data FROM audits a WHERE id = ? AND state = ? AND (lease_owner = '' OR lease_expires_ns < ?)`,
		[]any{id, statePending, now.UnixNano()}, owner, now, lease)
}

func (s *Store) claim(ctx context.Context, query string, args []any, owner string, now time.Time, lease time.Duration) (*secureauditv1.Audit, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim an audit: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a committed transaction's rollback is a no-op
	var id, cluster string
	var data []byte
	err = tx.QueryRowContext(ctx, query+s.skipLocked(), args...).Scan(&id, &cluster, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim an audit: %w", err)
	}
	if s.db.Dialect() == storage.Postgres {
		// Two replicas may each have picked an audit of one cluster: one at
		// a time per cluster, and the second sees the first's claim.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?, hashtext(?))`, clusterLock, cluster); err != nil {
			return nil, fmt.Errorf("claim audit %s: lock cluster %q: %w", id, cluster, err)
		}
		var held int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audits a WHERE a.id = ? AND EXISTS (`+clusterHeld+`)`,
			id, statePending, stateRunning, now.UnixNano()).Scan(&held)
		if err != nil {
			return nil, fmt.Errorf("claim audit %s: %w", id, err)
		}
		if held > 0 {
			return nil, nil
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audits SET lease_owner = ?, lease_expires_ns = ? WHERE id = ?`, owner, now.Add(lease).UnixNano(), id); err != nil {
		return nil, fmt.Errorf("claim audit %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim audit %s: %w", id, err)
	}
	return unmarshalAudit(data)
}

// clusterLock is the first key of the PostgreSQL advisory locks that
// serialise claims per cluster (the second is the cluster's hash).
const clusterLock = 0x61756469 // "audi"

// ClaimExpired takes for owner, until now+lease, the running audits whose
// holder's lease expired before now (that replica stopped renewing: it
// died, or lost the database), and returns them with the holder that lost
// each, for owner to fail with that reason. A replica's start-up claims
// nothing that is still renewed.
func (s *Store) ClaimExpired(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]Expired, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim expired audits: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a committed transaction's rollback is a no-op
	rows, err := tx.QueryContext(ctx, `SELECT data, lease_owner, lease_expires_ns FROM audits
		WHERE state = ? AND lease_owner <> '' AND lease_expires_ns < ? ORDER BY created_ns, id LIMIT 100`+s.skipLocked(),
		stateRunning, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("claim expired audits: %w", err)
	}
	var out []Expired
	for rows.Next() {
		var data []byte
		var e Expired
		var ns int64
		if err := rows.Scan(&data, &e.Holder, &ns); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim expired audits: %w", err)
		}
		if e.Audit, err = unmarshalAudit(data); err != nil {
			rows.Close()
			return nil, err
		}
		e.Expired = time.Unix(0, ns).UTC()
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim expired audits: %w", err)
	}
	for _, e := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE audits SET lease_owner = ?, lease_expires_ns = ? WHERE id = ?`, owner, now.Add(lease).UnixNano(), e.Audit.GetId()); err != nil {
			return nil, fmt.Errorf("claim expired audit %s: %w", e.Audit.GetId(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim expired audits: %w", err)
	}
	return out, nil
}

// Expired is a running audit whose holder's lease ran out.
type Expired struct {
	Audit   *secureauditv1.Audit
	Holder  string    // the replica that held it
	Expired time.Time // when its lease ran out
}

// RenewLease extends owner's lease on an unfinished audit until until. held
// is false when owner no longer holds it (another replica took it after the
// lease expired, or it finished); cancel is true when a cancel was asked of
// another replica (RequestCancel).
func (s *Store) RenewLease(ctx context.Context, id, owner string, until time.Time) (held, cancel bool, err error) {
	var c int
	err = s.db.QueryRowContext(ctx, `UPDATE audits SET lease_expires_ns = ? WHERE id = ? AND lease_owner = ? AND state IN (?, ?) RETURNING cancel_requested`,
		until.UnixNano(), id, owner, statePending, stateRunning).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("renew the lease on audit %s: %w", id, err)
	}
	return true, c != 0, nil
}

// RequestCancel asks the replica holding an unfinished audit to cancel it
// (it reads the request when it next renews its lease). It reports false
// when the audit is not pending or running.
func (s *Store) RequestCancel(ctx context.Context, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE audits SET cancel_requested = 1 WHERE id = ? AND state IN (?, ?)`, id, statePending, stateRunning)
	if err != nil {
		return false, fmt.Errorf("request cancel of audit %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ClaimScheduleRun claims a schedule's run due at due for replica: true for
// the one caller that claims it, false for every other (another replica
// fired it). Older claims of the schedule are deleted.
func (s *Store) ClaimScheduleRun(ctx context.Context, name string, due time.Time, replica string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO schedule_runs (name, due_ns, replica, claimed_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (name, due_ns) DO NOTHING`, name, due.UnixNano(), replica, now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("claim run of schedule %s due %s: %w", name, due.Format(time.RFC3339), err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return false, nil
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM schedule_runs WHERE name = ? AND due_ns < ?`, name, due.UnixNano()); err != nil {
		return true, fmt.Errorf("delete old runs of schedule %s: %w", name, err)
	}
	return true, nil
}

// TakeOverScheduleRun claims a schedule's run that another replica claimed
// before staleBefore and never moved on (it died between its claim and
// saving the schedule's next run): true, with the earlier claim's replica
// and time, for the one caller that takes it over. Without it the run's
// claim would stand for ever and the schedule never fire again.
func (s *Store) TakeOverScheduleRun(ctx context.Context, name string, due time.Time, replica string, now, staleBefore time.Time) (prev string, prevAt time.Time, ok bool, err error) {
	var claimed int64
	err = s.db.QueryRowContext(ctx, `SELECT replica, claimed_ns FROM schedule_runs WHERE name = ? AND due_ns = ?`, name, due.UnixNano()).Scan(&prev, &claimed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("claim of schedule %s due %s: %w", name, due.Format(time.RFC3339), err)
	}
	if claimed >= staleBefore.UnixNano() || prev == replica {
		return "", time.Time{}, false, nil
	}
	res, err := s.db.ExecContext(ctx, `UPDATE schedule_runs SET replica = ?, claimed_ns = ? WHERE name = ? AND due_ns = ? AND replica = ? AND claimed_ns = ?`,
		replica, now.UnixNano(), name, due.UnixNano(), prev, claimed)
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("take over schedule %s due %s: %w", name, due.Format(time.RFC3339), err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", time.Time{}, false, nil // another replica took it over first
	}
	return prev, time.Unix(0, claimed).UTC(), true, nil
}

// AuditCreatedSince reports whether an audit of the cluster was created at
// or after t.
func (s *Store) AuditCreatedSince(ctx context.Context, cluster string, t time.Time) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM audits WHERE cluster = ? AND created_ns >= ? LIMIT 1`, cluster, t.UnixNano()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audits of %s since %s: %w", cluster, t.Format(time.RFC3339), err)
	}
	return true, nil
}
