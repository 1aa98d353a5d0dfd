// Package store keeps audits, their findings, rendered reports, progress
// events, schedules and what the controls record, in the orchestrator's one
// database (package storage: SQLite by default, or PostgreSQL).
package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
)

// ErrNotFound is returned for an unknown audit or report.
var ErrNotFound = errors.New("not found")

// ErrFinished is returned for a change to an audit that has finished.
var ErrFinished = errors.New("the audit has finished")

// ErrBadPageToken is returned for a page token this store did not issue.
var ErrBadPageToken = errors.New("malformed page token")

// Store keeps audits and what they produced in the orchestrator's database
// (storage.DB: SQLite or PostgreSQL).
type Store struct {
	db *storage.DB
}

// New returns the store over db; the tables are created by db's migrations.
func New(db *storage.DB) *Store { return &Store{db: db} }

// Ping reads from the database, for readiness: an error means the store
// cannot serve audits (closed, removed, unreadable).
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM audits LIMIT 1) AS a`).Scan(&n); err != nil {
		return fmt.Errorf("read the store: %w", err)
	}
	return nil
}

// CreateAudit stores a new audit, with its first events in the same
// transaction: on a shared database another replica may claim the audit
// the moment it is stored, and continues its events from those stored.
func (s *Store) CreateAudit(ctx context.Context, a *secureauditv1.Audit, events ...*secureauditv1.AuditEvent) error {
	data, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("marshal audit: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert audit %s: %w", a.GetId(), err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if _, err := tx.ExecContext(ctx, `INSERT INTO audits (id, created_ns, state, cluster, data) VALUES (?, ?, ?, ?, ?)`,
		a.GetId(), a.GetCreatedAt().AsTime().UnixNano(), int32(a.GetState()), a.GetCluster(), data); err != nil {
		return fmt.Errorf("insert audit %s: %w", a.GetId(), err)
	}
	for _, e := range events {
		data, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("marshal event: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (audit_id, seq, data) VALUES (?, ?, ?)`, e.GetAuditId(), e.GetSequence(), data); err != nil {
			return fmt.Errorf("insert event %d of %s: %w", e.GetSequence(), e.GetAuditId(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert audit %s: %w", a.GetId(), err)
	}
	return nil
}

// UpdateAudit replaces a stored audit that has not finished: a finished
// audit is never written again (ErrFinished), so a replica that lost its
// lease cannot overwrite the failure another replica recorded.
func (s *Store) UpdateAudit(ctx context.Context, a *secureauditv1.Audit) error {
	data, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("marshal audit: %w", err)
	}
	// An audit started without a cluster name is filed under the cluster
	// its rbac-agent presented once it finishes (ListClusterAudits,
	// LastAudit). Not before: while it runs, its empty name keeps it from
	// overlapping another unnamed audit (the claim's one-per-cluster rule),
	// as it did before clusters were registered. A name is never cleared.
	filed := ""
	if st := a.GetState(); st != secureauditv1.AuditState_AUDIT_STATE_PENDING && st != secureauditv1.AuditState_AUDIT_STATE_RUNNING {
		filed = a.GetCluster()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE audits SET state = ?, cluster = CASE WHEN ? = '' THEN cluster ELSE ? END, data = ? WHERE id = ? AND state IN (?, ?)`,
		int32(a.GetState()), filed, filed, data, a.GetId(), statePending, stateRunning)
	if err != nil {
		return fmt.Errorf("update audit %s: %w", a.GetId(), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetAudit(ctx, a.GetId()); err != nil {
			return fmt.Errorf("update audit %s: %w", a.GetId(), err)
		}
		return fmt.Errorf("update audit %s: %w", a.GetId(), ErrFinished)
	}
	return nil
}

// GetAudit returns one audit.
func (s *Store) GetAudit(ctx context.Context, id string) (*secureauditv1.Audit, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM audits WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get audit %s: %w", id, err)
	}
	return unmarshalAudit(data)
}

// ListAudits returns up to limit audits, newest first, after the page token,
// and the token of the next page ("" at the end).
func (s *Store) ListAudits(ctx context.Context, limit int, pageToken string) ([]*secureauditv1.Audit, string, error) {
	return s.ListClusterAudits(ctx, "", limit, pageToken)
}

// ListClusterAudits is ListAudits of one cluster's audits; cluster ""
// lists every audit.
func (s *Store) ListClusterAudits(ctx context.Context, cluster string, limit int, pageToken string) ([]*secureauditv1.Audit, string, error) {
	var where []string
	var args []any
	if cluster != "" {
		where = append(where, "cluster = ?")
		args = append(args, cluster)
	}
	if pageToken != "" {
		createdNs, id, err := decodeToken(pageToken)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_ns, id) < (?, ?)")
		args = append(args, createdNs, id)
	}
	query := `SELECT id, created_ns, data FROM audits`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_ns DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audits: %w", err)
	}
	defer rows.Close()
	var (
		out  []*secureauditv1.Audit
		next string
	)
	for rows.Next() {
		var (
			id        string
			createdNs int64
			data      []byte
		)
		if err := rows.Scan(&id, &createdNs, &data); err != nil {
			return nil, "", fmt.Errorf("list audits: %w", err)
		}
		if len(out) == limit {
			last := out[len(out)-1]
			next = encodeToken(last.GetCreatedAt().AsTime().UnixNano(), last.GetId())
			break
		}
		a, err := unmarshalAudit(data)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list audits: %w", err)
	}
	return out, next, nil
}

// Unfinished returns the audits left pending or running, for recovery at start.
func (s *Store) Unfinished(ctx context.Context) ([]*secureauditv1.Audit, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM audits WHERE state IN (?, ?) ORDER BY created_ns`,
		int32(secureauditv1.AuditState_AUDIT_STATE_PENDING), int32(secureauditv1.AuditState_AUDIT_STATE_RUNNING))
	if err != nil {
		return nil, fmt.Errorf("list unfinished audits: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.Audit
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list unfinished audits: %w", err)
		}
		a, err := unmarshalAudit(data)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SaveResult stores, in one transaction, an audit's findings, the report
// header they were rendered with (input: the Report without its findings,
// kept so that any format can be rendered later), the fleet view's digest
// of them (AuditDigest) and the rendered reports.
func (s *Store) SaveResult(ctx context.Context, auditID string, findings []*secureauditv1.Finding, input *secureauditv1.Report, reports map[secureauditv1.ReportFormat][]byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save result of %s: %w", auditID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a committed transaction's rollback is a no-op
	if input != nil {
		data, err := proto.Marshal(input)
		if err != nil {
			return fmt.Errorf("marshal report input of %s: %w", auditID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_inputs (audit_id, data) VALUES (?, ?)`, auditID, data); err != nil {
			return fmt.Errorf("insert report input of %s: %w", auditID, err)
		}
	}
	if err := insertFindings(ctx, tx, auditID, findings); err != nil {
		return err
	}
	// The fleet view's digest, written once here (migration 10).
	digest, err := newDigest(findings, input)
	if err != nil {
		return fmt.Errorf("digest of %s: %w", auditID, err)
	}
	if err := saveDigest(ctx, tx, auditID, digest); err != nil {
		return err
	}
	for format, data := range reports {
		if _, err := tx.ExecContext(ctx, `INSERT INTO reports (audit_id, format, data) VALUES (?, ?, ?)`, auditID, int32(format), data); err != nil {
			return fmt.Errorf("insert %s report of %s: %w", format, auditID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save result of %s: %w", auditID, err)
	}
	return nil
}

// findingsPerInsert is the number of findings one INSERT statement writes
// (six parameters each: 1,536 per statement, under SQLite's 32,766 and
// PostgreSQL's 65,535). One row per statement cost 0.5 s of CPU for the
// 100,000-object scan's findings on SQLite, mostly per-statement work.
const findingsPerInsert = 256

// insertFindings writes the findings in order, findingsPerInsert rows per
// statement, through one statement prepared for full batches and one for
// the rest.
func insertFindings(ctx context.Context, tx *storage.Tx, auditID string, findings []*secureauditv1.Finding) error {
	var full *sql.Stmt
	if len(findings) >= findingsPerInsert {
		var err error
		if full, err = tx.PrepareContext(ctx, insertFindingsSQL(findingsPerInsert)); err != nil {
			return fmt.Errorf("save findings of %s: %w", auditID, err)
		}
		defer full.Close()
	}
	args := make([]any, 0, 6*min(len(findings), findingsPerInsert))
	var data []byte // one buffer for every batch's encodings
	for start := 0; start < len(findings); start += findingsPerInsert {
		batch := findings[start:min(start+findingsPerInsert, len(findings))]
		args, data = args[:0], data[:0]
		ends := make([]int, len(batch))
		for i, f := range batch {
			var err error
			data, err = proto.MarshalOptions{}.MarshalAppend(data, f)
			if err != nil {
				return fmt.Errorf("marshal finding %s: %w", f.GetId(), err)
			}
			ends[i] = len(data)
		}
		from := 0
		for i, f := range batch {
			args = append(args, auditID, start+i, f.GetId(), f.GetRuleId(), int32(f.GetSeverity()), data[from:ends[i]:ends[i]])
			from = ends[i]
		}
		var err error
		if len(batch) == findingsPerInsert {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertFindingsSQL(len(batch)), args...)
		}
		if err != nil {
			return fmt.Errorf("insert findings %d to %d of %s: %w", start, start+len(batch)-1, auditID, err)
		}
	}
	return nil
}

// insertFindingsSQL returns the INSERT of n findings, with ? placeholders.
func insertFindingsSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO findings (audit_id, idx, id, rule_id, severity, data) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?)`)
	}
	return b.String()
}

// Findings returns an audit's stored findings in order. They are decoded
// once read, so that the database's one connection is held for the read
// alone (an audit's events wait for it).
func (s *Store) Findings(ctx context.Context, auditID string) ([]*secureauditv1.Finding, error) {
	_, blobs, err := s.StoredFindings(ctx, auditID)
	if err != nil {
		return nil, err
	}
	out := make([]*secureauditv1.Finding, 0, len(blobs))
	for _, data := range blobs {
		f := &secureauditv1.Finding{}
		if err := proto.Unmarshal(data, f); err != nil {
			return nil, fmt.Errorf("decode finding of %s: %w", auditID, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// StoredFindings returns an audit's findings in order as stored: each
// one's ID and its protobuf encoding (proto.Marshal's, undecoded).
func (s *Store) StoredFindings(ctx context.Context, auditID string) (ids []string, data [][]byte, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM findings WHERE audit_id = ? ORDER BY idx`, auditID)
	if err != nil {
		return nil, nil, fmt.Errorf("findings of %s: %w", auditID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			b  []byte
		)
		if err := rows.Scan(&id, &b); err != nil {
			return nil, nil, fmt.Errorf("findings of %s: %w", auditID, err)
		}
		ids, data = append(ids, id), append(data, b)
	}
	return ids, data, rows.Err()
}

// Report returns a rendered report whole. For a large document use
// ReadReport, which hands it over chunk by chunk.
func (s *Store) Report(ctx context.Context, auditID string, format secureauditv1.ReportFormat) ([]byte, error) {
	var out []byte
	err := s.ReadReport(ctx, auditID, format, func(chunk []byte) error {
		out = append(out, chunk...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// ReadReport hands a rendered report to fn in the chunks it was stored in,
// in order, reading one chunk at a time (one query each, so that no read
// holds the database while fn sends the chunk on). A document stored whole
// (before migration 7, or through SaveReport) is one chunk. It wraps
// ErrNotFound when the document is not stored whole.
func (s *Store) ReadReport(ctx context.Context, auditID string, format secureauditv1.ReportFormat, fn func([]byte) error) error {
	var data []byte
	var chunks int
	err := s.db.QueryRowContext(ctx, `SELECT data, chunks FROM reports WHERE audit_id = ? AND format = ?`, auditID, int32(format)).Scan(&data, &chunks)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s report of audit %s: %w", format, auditID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get %s report of %s: %w", format, auditID, err)
	}
	if chunks == 0 {
		return fn(data)
	}
	for seq := range chunks {
		var chunk []byte
		err := s.db.QueryRowContext(ctx, `SELECT data FROM report_chunks WHERE audit_id = ? AND format = ? AND seq = ?`, auditID, int32(format), seq).Scan(&chunk)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s report of audit %s: chunk %d of %d is missing", format, auditID, seq, chunks)
		}
		if err != nil {
			return fmt.Errorf("get %s report of %s, chunk %d: %w", format, auditID, seq, err)
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
	return nil
}

// SaveReportChunk stores chunk seq (from 0) of a document as it arrives.
// The document is not served until FinishReport records it whole. A chunk
// already stored is kept: documents are rendered deterministically in
// chunks whose boundaries depend on their bytes only, so a concurrent
// render of the same format from the same input stores the same chunks.
func (s *Store) SaveReportChunk(ctx context.Context, auditID string, format secureauditv1.ReportFormat, seq int, data []byte) error {
	if data == nil {
		data = []byte{} // NOT NULL
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO report_chunks (audit_id, format, seq, data) VALUES (?, ?, ?, ?) ON CONFLICT (audit_id, format, seq) DO NOTHING`,
		auditID, int32(format), seq, data); err != nil {
		return fmt.Errorf("insert chunk %d of the %s report of %s: %w", seq, format, auditID, err)
	}
	return nil
}

// FinishReport records that the document's chunks 0 to chunks-1 are
// stored, making it readable. A document of that format already recorded
// is kept.
func (s *Store) FinishReport(ctx context.Context, auditID string, format secureauditv1.ReportFormat, chunks int) error {
	if chunks < 1 {
		return fmt.Errorf("finish %s report of %s: %d chunks, want at least one", format, auditID, chunks)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO reports (audit_id, format, data, chunks) VALUES (?, ?, ?, ?) ON CONFLICT (audit_id, format) DO NOTHING`,
		auditID, int32(format), []byte{}, chunks); err != nil {
		return fmt.Errorf("finish %s report of %s: %w", format, auditID, err)
	}
	return nil
}

// ReportInput returns the report header an audit's reports were rendered
// with (without findings; see SaveResult), with its access review state
// when one was stored (SaveReviewState).
func (s *Store) ReportInput(ctx context.Context, auditID string) (*secureauditv1.Report, error) {
	var data, review []byte
	err := s.db.QueryRowContext(ctx, `SELECT data, review FROM report_inputs WHERE audit_id = ?`, auditID).Scan(&data, &review)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("report input of audit %s: %w", auditID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get report input of %s: %w", auditID, err)
	}
	r := &secureauditv1.Report{}
	if err := proto.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode report input of %s: %w", auditID, err)
	}
	if review != nil {
		st := &secureauditv1.Report{} // only its review is set (SaveReviewState)
		if err := proto.Unmarshal(review, st); err != nil {
			return nil, fmt.Errorf("decode review state of the report input of %s: %w", auditID, err)
		}
		r.Review = st.GetReview()
	}
	return r, nil
}

// SaveReport stores a report rendered after its audit finished. A report
// of that format already stored (rendered by a concurrent request from the
// same input) is kept.
func (s *Store) SaveReport(ctx context.Context, auditID string, format secureauditv1.ReportFormat, data []byte) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO reports (audit_id, format, data) VALUES (?, ?, ?) ON CONFLICT (audit_id, format) DO NOTHING`,
		auditID, int32(format), data); err != nil {
		return fmt.Errorf("insert %s report of %s: %w", format, auditID, err)
	}
	return nil
}

// AppendEvent stores a progress event; its sequence must be the next one.
func (s *Store) AppendEvent(ctx context.Context, e *secureauditv1.AuditEvent) error {
	data, err := proto.Marshal(e)
	if err != nil {
		return fmt.Errorf("marshal event: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO events (audit_id, seq, data) VALUES (?, ?, ?)`, e.GetAuditId(), e.GetSequence(), data); err != nil {
		return fmt.Errorf("insert event %d of %s: %w", e.GetSequence(), e.GetAuditId(), err)
	}
	return nil
}

// Events returns an audit's events with a sequence above after.
func (s *Store) Events(ctx context.Context, auditID string, after uint32) ([]*secureauditv1.AuditEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM events WHERE audit_id = ? AND seq > ? ORDER BY seq`, auditID, after)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", auditID, err)
	}
	defer rows.Close()
	var out []*secureauditv1.AuditEvent
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("events of %s: %w", auditID, err)
		}
		e := &secureauditv1.AuditEvent{}
		if err := proto.Unmarshal(data, e); err != nil {
			return nil, fmt.Errorf("decode event of %s: %w", auditID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func unmarshalAudit(data []byte) (*secureauditv1.Audit, error) {
	a := &secureauditv1.Audit{}
	if err := proto.Unmarshal(data, a); err != nil {
		return nil, fmt.Errorf("decode audit: %w", err)
	}
	return a, nil
}

func encodeToken(createdNs int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdNs, 10) + "|" + id))
}

func decodeToken(tok string) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", ErrBadPageToken
	}
	ns, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return 0, "", ErrBadPageToken
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 || time.Unix(0, n).IsZero() {
		return 0, "", ErrBadPageToken
	}
	return n, id, nil
}
