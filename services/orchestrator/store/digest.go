package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
)

// MaxWorst is how many of an audit's worst findings its digest keeps: the
// most the fleet view's contract returns per cluster.
const MaxWorst = 50

// Digest is what the fleet view shows of a succeeded audit besides the
// audit itself: whether it was compared with an earlier audit of its
// cluster and how many findings were new, changed and resolved since, and
// its worst findings (Headline of each), most severe first.
type Digest struct {
	HasPrevious            bool
	New, Changed, Resolved uint32
	Worst                  []*secureauditv1.Finding
	worst                  []byte // Worst encoded for audit_digests.worst (newDigest)
}

// Headline is the part of a finding the fleet view carries: what names it
// (ID, rule, title, severity and why), whom and what it is about (subject,
// binding, role, scope), its family and the remediation, without the
// matched rules, path, folds, workloads, controls and description that
// the audit's report holds. It is a valid Finding.
func Headline(f *secureauditv1.Finding) *secureauditv1.Finding {
	return &secureauditv1.Finding{
		Id: f.GetId(), RuleId: f.GetRuleId(), Title: f.GetTitle(), Severity: f.GetSeverity(), SeverityReason: f.GetSeverityReason(),
		Subject: f.GetSubject(), Binding: f.GetBinding(), Role: f.GetRole(), Scope: f.GetScope(),
		Remediation: f.GetRemediation(), Family: f.GetFamily(), Conditional: f.GetConditional(),
	}
}

// newDigest digests an audit's findings, in stored order, and its report
// header (nil when none was stored): the worst are chosen as
// WorstFindings chooses them (by severity, then stored order; neither
// platform-managed nor accepted).
func newDigest(findings []*secureauditv1.Finding, input *secureauditv1.Report) (*Digest, error) {
	d := &Digest{}
	if h := input.GetHistory(); h != nil {
		d.HasPrevious = true
		d.New, d.Changed, d.Resolved = uint32(len(h.GetNewFindingIds())), uint32(len(h.GetChanged())), uint32(len(h.GetResolved()))
	}
	accepted := map[string]bool{}
	for _, a := range input.GetAcceptedRisks() {
		accepted[a.GetFinding().GetId()] = true
	}
	var kept []*secureauditv1.Finding
	for _, f := range findings {
		if !f.GetInfrastructure() && !accepted[f.GetId()] {
			kept = append(kept, f)
		}
	}
	slices.SortStableFunc(kept, func(a, b *secureauditv1.Finding) int { return cmp.Compare(a.GetSeverity(), b.GetSeverity()) })
	for _, f := range kept[:min(len(kept), MaxWorst)] {
		h := Headline(f)
		data, err := proto.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("marshal finding %s: %w", f.GetId(), err)
		}
		d.worst = protowire.AppendBytes(protowire.AppendTag(d.worst, 1, protowire.BytesType), data)
		d.Worst = append(d.Worst, h)
	}
	if d.worst == nil {
		d.worst = []byte{} // NOT NULL
	}
	return d, nil
}

// decodeWorst decodes the first n of a digest's stored worst findings.
func decodeWorst(data []byte, n int) ([]*secureauditv1.Finding, error) {
	var out []*secureauditv1.Finding
	for len(data) > 0 && len(out) < n {
		num, typ, k := protowire.ConsumeTag(data)
		if k < 0 || num != 1 || typ != protowire.BytesType {
			return nil, errors.New("malformed worst findings")
		}
		data = data[k:]
		b, k := protowire.ConsumeBytes(data)
		if k < 0 {
			return nil, errors.New("malformed worst findings")
		}
		data = data[k:]
		f := &secureauditv1.Finding{}
		if err := proto.Unmarshal(b, f); err != nil {
			return nil, fmt.Errorf("decode worst finding: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// digestQuerier is a database or a transaction.
type digestQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// saveDigest stores an audit's digest; one already stored is kept (a
// digest depends only on the audit's stored findings and header).
func saveDigest(ctx context.Context, db digestQuerier, auditID string, d *Digest) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO audit_digests (audit_id, has_previous, new_findings, changed, resolved, worst) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (audit_id) DO NOTHING`,
		auditID, d.HasPrevious, d.New, d.Changed, d.Resolved, d.worst); err != nil {
		return fmt.Errorf("insert digest of %s: %w", auditID, err)
	}
	return nil
}

// backfillDigest digests an audit stored without one and stores it.
func (s *Store) backfillDigest(ctx context.Context, auditID string, n int) (*Digest, error) {
	input, err := s.ReportInput(ctx, auditID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	findings, err := s.Findings(ctx, auditID)
	if err != nil {
		return nil, err
	}
	d, err := newDigest(findings, input)
	if err != nil {
		return nil, fmt.Errorf("digest of %s: %w", auditID, err)
	}
	if err := saveDigest(ctx, s.db, auditID, d); err != nil {
		return nil, err
	}
	d.Worst = d.Worst[:min(len(d.Worst), n)]
	return d, nil
}

// Head is what the fleet view reads of one cluster's audits: of its
// newest audits down to the newest succeeded one (at most HeadAudits of
// them), the newest, the newest failed one and how many failed, and the
// succeeded one with its digest. Only these are kept, not the audits in
// between.
type Head struct {
	// Last is the cluster's newest audit, in any state.
	Last *secureauditv1.Audit
	// LastFailed is the newest failed audit newer than Succeeded (nil
	// when none), and Failed how many failed audits are newer than it,
	// counted among the HeadAudits newest.
	LastFailed *secureauditv1.Audit
	Failed     uint32
	// Succeeded is the newest succeeded audit among the HeadAudits newest
	// (nil when none) and Digest its digest.
	Succeeded *secureauditv1.Audit
	Digest    *Digest
}

// HeadAudits is how many of a cluster's newest audits the fleet view reads
// looking for its last success.
const HeadAudits = 100

// fleetBatch is how many clusters one fleet query names (SQLite allows
// 32,766 parameters in a statement); a larger fleet takes one query per
// batch (a variable for the tests).
var fleetBatch = 500

// FleetHeads returns the Head of each named cluster that has audits, with
// each digest's worst n findings, in one query per fleetBatch clusters
// (and one more for each succeeded audit stored without a digest, the
// first time).
func (s *Store) FleetHeads(ctx context.Context, clusters []string, n int) (map[string]*Head, error) {
	out := map[string]*Head{}
	for start := 0; start < len(clusters); start += fleetBatch {
		if err := s.fleetHeads(ctx, clusters[start:min(start+fleetBatch, len(clusters))], n, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fleetHeads adds the Heads of clusters to out.
func (s *Store) fleetHeads(ctx context.Context, clusters []string, n int, out map[string]*Head) error {
	if len(clusters) == 0 {
		return nil
	}
	query, args := fleetHeadsQuery(s.db.Dialect(), clusters)
	ok := int32(secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED)
	failed := int32(secureauditv1.AuditState_AUDIT_STATE_FAILED)
	type missing struct{ cluster, id string }
	var backfill []missing
	err := func() error {
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				cluster, id                   string
				state                         int32
				data, worst                   []byte
				hasPrevious                   sql.NullBool
				newFindings, changed, resolve sql.NullInt64
			)
			if err := rows.Scan(&cluster, &id, &state, &data, &hasPrevious, &newFindings, &changed, &resolve, &worst); err != nil {
				return err
			}
			h := out[cluster]
			if h == nil {
				h = &Head{}
				out[cluster] = h
			}
			if h.Succeeded != nil {
				// Older than the success: none, the range ends at it.
				continue
			}
			if state == failed {
				h.Failed++
			}
			// Only the newest audit, the newest failed one and the
			// succeeded one are decoded and kept.
			if h.Last != nil && (state != failed || h.LastFailed != nil) && state != ok {
				continue
			}
			a, err := unmarshalAudit(data)
			if err != nil {
				return fmt.Errorf("audit %s: %w", id, err)
			}
			if h.Last == nil {
				h.Last = a
			}
			if state == failed && h.LastFailed == nil {
				h.LastFailed = a
			}
			if state != ok {
				continue
			}
			h.Succeeded = a
			if !hasPrevious.Valid {
				backfill = append(backfill, missing{cluster, id})
				continue
			}
			d := &Digest{HasPrevious: hasPrevious.Bool, New: uint32(newFindings.Int64), Changed: uint32(changed.Int64), Resolved: uint32(resolve.Int64)}
			if d.Worst, err = decodeWorst(worst, n); err != nil {
				return fmt.Errorf("digest of %s: %w", id, err)
			}
			h.Digest = d
		}
		return rows.Err()
	}()
	if err != nil {
		return fmt.Errorf("fleet heads: %w", err)
	}
	for _, m := range backfill {
		d, err := s.backfillDigest(ctx, m.id, n)
		if err != nil {
			return err
		}
		out[m.cluster].Digest = d
	}
	return nil
}

// fleetHeadsQuery returns fleetHeads' query of clusters (at least one) on
// dialect, and its arguments.
func fleetHeadsQuery(dialect storage.Dialect, clusters []string) (string, []any) {
	// For each cluster, its newest succeeded audit (one probe of
	// audits_cluster_state_created, migration 00012, whether or not the
	// cluster ever succeeded: TestFleetHeadsPlan), then its audits from
	// that one on, at most HeadAudits:
	// an index range per cluster, whatever the length of its history.
	// PostgreSQL takes the range per cluster with LATERAL ... LIMIT;
	// SQLite, which has no LATERAL, bounds each range by its HeadAudits-th
	// newest audit too (an index walk of HeadAudits entries), so that it
	// reads and the window sorts at most HeadAudits rows of a cluster.
	lastOK := `WITH l AS MATERIALIZED (SELECT c.name,
		COALESCE((SELECT o.created_ns FROM audits o WHERE o.cluster = c.name AND o.state = ? ORDER BY o.created_ns DESC, o.id DESC LIMIT 1), 0) AS ok_ns,
		COALESCE((SELECT o.id FROM audits o WHERE o.cluster = c.name AND o.state = ? ORDER BY o.created_ns DESC, o.id DESC LIMIT 1), '') AS ok_id
	FROM clusters c WHERE c.name IN (` + placeholders(len(clusters)) + `))
`
	query := lastOK + `SELECT l.name, a.id, a.state, a.data, d.has_previous, d.new_findings, d.changed, d.resolved, d.worst FROM l
CROSS JOIN LATERAL (SELECT a.id, a.state, a.data, a.created_ns FROM audits a
	WHERE a.cluster = l.name AND (a.created_ns, a.id) >= (l.ok_ns, l.ok_id) ORDER BY a.created_ns DESC, a.id DESC LIMIT ?) a
LEFT JOIN audit_digests d ON d.audit_id = a.id AND a.state = ?
ORDER BY l.name, a.created_ns DESC, a.id DESC`
	if dialect == storage.SQLite {
		// The range starts at the later of the success and the
		// HeadAudits-th newest audit: one bound, so that the index range
		// itself stops there.
		query = `WITH l AS MATERIALIZED (SELECT c.name,
		COALESCE((SELECT o.created_ns FROM audits o WHERE o.cluster = c.name AND o.state = ? ORDER BY o.created_ns DESC, o.id DESC LIMIT 1), 0) AS ok_ns,
		COALESCE((SELECT o.id FROM audits o WHERE o.cluster = c.name AND o.state = ? ORDER BY o.created_ns DESC, o.id DESC LIMIT 1), '') AS ok_id,
		COALESCE((SELECT o.created_ns FROM audits o WHERE o.cluster = c.name ORDER BY o.created_ns DESC, o.id DESC LIMIT 1 OFFSET ?), 0) AS h_ns,
		COALESCE((SELECT o.id FROM audits o WHERE o.cluster = c.name ORDER BY o.created_ns DESC, o.id DESC LIMIT 1 OFFSET ?), '') AS h_id
	FROM clusters c WHERE c.name IN (` + placeholders(len(clusters)) + `)),
m AS MATERIALIZED (SELECT name,
		CASE WHEN (ok_ns, ok_id) >= (h_ns, h_id) THEN ok_ns ELSE h_ns END AS lo_ns,
		CASE WHEN (ok_ns, ok_id) >= (h_ns, h_id) THEN ok_id ELSE h_id END AS lo_id
	FROM l)
SELECT cluster, id, state, data, has_previous, new_findings, changed, resolved, worst FROM (
	SELECT a.cluster, a.id, a.state, a.data, d.has_previous, d.new_findings, d.changed, d.resolved, d.worst,
		ROW_NUMBER() OVER (PARTITION BY a.cluster ORDER BY a.created_ns DESC, a.id DESC) AS rn
	FROM m JOIN audits a ON a.cluster = m.name AND (a.created_ns, a.id) >= (m.lo_ns, m.lo_id)
	LEFT JOIN audit_digests d ON d.audit_id = a.id AND a.state = ?
) h WHERE rn <= ? ORDER BY cluster, rn`
	}
	ok := int32(secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED)
	args := []any{ok, ok}
	if dialect == storage.SQLite {
		args = append(args, HeadAudits-1, HeadAudits-1)
	}
	for _, c := range clusters {
		args = append(args, c)
	}
	if dialect == storage.SQLite {
		args = append(args, ok, HeadAudits)
	} else {
		args = append(args, HeadAudits, ok)
	}
	return query, args
}

// FleetTrends returns each named cluster's newest n audits, in any state,
// newest first, in one query.
func (s *Store) FleetTrends(ctx context.Context, clusters []string, n int) (map[string][]*secureauditv1.Audit, error) {
	out := map[string][]*secureauditv1.Audit{}
	if len(clusters) == 0 || n <= 0 {
		return out, nil
	}
	// An index range per cluster, as in FleetHeads.
	query := `SELECT c.name, a.id, a.data FROM clusters c
CROSS JOIN LATERAL (SELECT a.id, a.data, a.created_ns FROM audits a WHERE a.cluster = c.name ORDER BY a.created_ns DESC, a.id DESC LIMIT ?) a
WHERE c.name IN (` + placeholders(len(clusters)) + `)
ORDER BY c.name, a.created_ns DESC, a.id DESC`
	if s.db.Dialect() == storage.SQLite {
		// The n-th newest audit's time bounds each cluster's range.
		query = `SELECT cluster, id, data FROM (
	SELECT a.cluster, a.id, a.data, ROW_NUMBER() OVER (PARTITION BY a.cluster ORDER BY a.created_ns DESC, a.id DESC) AS rn
	FROM (SELECT c.name,
			COALESCE((SELECT o.created_ns FROM audits o WHERE o.cluster = c.name ORDER BY o.created_ns DESC, o.id DESC LIMIT 1 OFFSET ?), 0) AS since
		FROM clusters c WHERE c.name IN (` + placeholders(len(clusters)) + `)) l
	JOIN audits a ON a.cluster = l.name AND a.created_ns >= l.since
) t WHERE rn <= ? ORDER BY cluster, rn`
	}
	args := []any{n}
	if s.db.Dialect() == storage.SQLite {
		args[0] = n - 1
	}
	for _, c := range clusters {
		args = append(args, c)
	}
	if s.db.Dialect() == storage.SQLite {
		args = append(args, n)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("fleet trends: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			cluster, id string
			data        []byte
		)
		if err := rows.Scan(&cluster, &id, &data); err != nil {
			return nil, fmt.Errorf("fleet trends: %w", err)
		}
		a, err := unmarshalAudit(data)
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", id, err)
		}
		out[cluster] = append(out[cluster], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet trends: %w", err)
	}
	return out, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// GetLast returns h's newest audit; nil for a nil Head.
func (h *Head) GetLast() *secureauditv1.Audit {
	if h == nil {
		return nil
	}
	return h.Last
}

// GetLastFailed returns h's newest failed audit since its success; nil for
// a nil Head.
func (h *Head) GetLastFailed() *secureauditv1.Audit {
	if h == nil {
		return nil
	}
	return h.LastFailed
}

// GetFailed returns how many of h's audits since its success failed; 0
// for a nil Head.
func (h *Head) GetFailed() uint32 {
	if h == nil {
		return 0
	}
	return h.Failed
}

// GetSucceeded returns h's newest succeeded audit; nil for a nil Head.
func (h *Head) GetSucceeded() *secureauditv1.Audit {
	if h == nil {
		return nil
	}
	return h.Succeeded
}

// GetDigest returns h's digest; nil for a nil Head.
func (h *Head) GetDigest() *Digest {
	if h == nil {
		return nil
	}
	return h.Digest
}
