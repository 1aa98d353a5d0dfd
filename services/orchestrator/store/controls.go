package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/controls"
)

// SaveModelCalls stores an audit's model calls.
func (s *Store) SaveModelCalls(ctx context.Context, auditID string, calls []*secureauditv1.ModelCall) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save model calls: %w", err)
	}
	defer tx.Rollback()
	for i, c := range calls {
		data, err := proto.Marshal(c)
		if err != nil {
			return fmt.Errorf("marshal model call: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO model_calls (audit_id, idx, data) VALUES (?, ?, ?)
			ON CONFLICT (audit_id, idx) DO UPDATE SET data = excluded.data`, auditID, i, data); err != nil {
			return fmt.Errorf("save model calls of %s: %w", auditID, err)
		}
	}
	return tx.Commit()
}

// ModelCalls returns an audit's model calls in order.
func (s *Store) ModelCalls(ctx context.Context, auditID string) ([]*secureauditv1.ModelCall, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM model_calls WHERE audit_id = ? ORDER BY idx`, auditID)
	if err != nil {
		return nil, fmt.Errorf("model calls of %s: %w", auditID, err)
	}
	defer rows.Close()
	var out []*secureauditv1.ModelCall
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("model calls of %s: %w", auditID, err)
		}
		c := &secureauditv1.ModelCall{}
		if err := proto.Unmarshal(data, c); err != nil {
			return nil, fmt.Errorf("unmarshal model call: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const sampleColumns = `agent, provider, response_model, template_version, request_model, audit_id, time_ns, per_item, calls, truncated`

func scanSample(sc interface{ Scan(...any) error }) (controls.Sample, error) {
	var smp controls.Sample
	var ns int64
	err := sc.Scan(&smp.Key.Agent, &smp.Key.Provider, &smp.Key.ResponseModel, &smp.Key.TemplateVersion,
		&smp.RequestModel, &smp.AuditID, &ns, &smp.PerItem, &smp.Calls, &smp.Truncated)
	smp.Time = time.Unix(0, ns).UTC()
	return smp, err
}

// TokenSamples returns a key's latest limit samples, oldest first.
func (s *Store) TokenSamples(ctx context.Context, key controls.Key, limit int) ([]controls.Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sampleColumns+` FROM (
		SELECT * FROM token_samples WHERE agent = ? AND provider = ? AND response_model = ? AND template_version = ?
		ORDER BY seq DESC LIMIT ?) AS latest ORDER BY seq`,
		key.Agent, key.Provider, key.ResponseModel, key.TemplateVersion, limit)
	if err != nil {
		return nil, fmt.Errorf("token samples: %w", err)
	}
	defer rows.Close()
	var out []controls.Sample
	for rows.Next() {
		smp, err := scanSample(rows)
		if err != nil {
			return nil, fmt.Errorf("token samples: %w", err)
		}
		out = append(out, smp)
	}
	return out, rows.Err()
}

// LatestTokenSample returns the newest sample of an agent, provider and
// requested model.
func (s *Store) LatestTokenSample(ctx context.Context, agent, provider, requestModel string) (controls.Sample, bool, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+sampleColumns+` FROM token_samples
		WHERE agent = ? AND provider = ? AND request_model = ? ORDER BY seq DESC LIMIT 1`, agent, provider, requestModel)
	smp, err := scanSample(row)
	if errors.Is(err, sql.ErrNoRows) {
		return controls.Sample{}, false, nil
	}
	if err != nil {
		return controls.Sample{}, false, fmt.Errorf("latest token sample: %w", err)
	}
	return smp, true, nil
}

// SaveTokenSample appends a sample.
func (s *Store) SaveTokenSample(ctx context.Context, smp controls.Sample) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO token_samples (`+sampleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		smp.Key.Agent, smp.Key.Provider, smp.Key.ResponseModel, smp.Key.TemplateVersion, smp.RequestModel,
		smp.AuditID, smp.Time.UnixNano(), smp.PerItem, smp.Calls, smp.Truncated)
	if err != nil {
		return fmt.Errorf("save token sample: %w", err)
	}
	return nil
}

// TokenKeys returns every baseline key, sorted.
func (s *Store) TokenKeys(ctx context.Context) ([]controls.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT agent, provider, response_model, template_version FROM token_samples
		ORDER BY agent, provider, response_model, template_version`)
	if err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	defer rows.Close()
	var out []controls.Key
	for rows.Next() {
		var k controls.Key
		if err := rows.Scan(&k.Agent, &k.Provider, &k.ResponseModel, &k.TemplateVersion); err != nil {
			return nil, fmt.Errorf("token keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// SaveTokenAlert appends an alert.
func (s *Store) SaveTokenAlert(ctx context.Context, a *secureauditv1.TokenAlert) error {
	data, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("marshal token alert: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO token_alerts (data) VALUES (?)`, data); err != nil {
		return fmt.Errorf("save token alert: %w", err)
	}
	return nil
}

// TokenAlerts returns the latest limit alerts, newest first.
func (s *Store) TokenAlerts(ctx context.Context, limit int) ([]*secureauditv1.TokenAlert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM token_alerts ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("token alerts: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.TokenAlert
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("token alerts: %w", err)
		}
		a := &secureauditv1.TokenAlert{}
		if err := proto.Unmarshal(data, a); err != nil {
			return nil, fmt.Errorf("unmarshal token alert: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SaveAnomaly appends an anomaly event.
func (s *Store) SaveAnomaly(ctx context.Context, a *secureauditv1.Anomaly) error {
	data, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("marshal anomaly: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO anomalies (audit_id, kind, data) VALUES (?, ?, ?)`, a.GetAuditId(), int32(a.GetKind()), data); err != nil {
		return fmt.Errorf("save anomaly: %w", err)
	}
	return nil
}

// Anomalies returns the latest limit anomaly events, newest first, of one
// audit when auditID is set.
func (s *Store) Anomalies(ctx context.Context, auditID string, limit int) ([]*secureauditv1.Anomaly, error) {
	query, args := `SELECT data FROM anomalies ORDER BY seq DESC LIMIT ?`, []any{limit}
	if auditID != "" {
		query, args = `SELECT data FROM anomalies WHERE audit_id = ? ORDER BY seq DESC LIMIT ?`, []any{auditID, limit}
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("anomalies: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.Anomaly
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("anomalies: %w", err)
		}
		a := &secureauditv1.Anomaly{}
		if err := proto.Unmarshal(data, a); err != nil {
			return nil, fmt.Errorf("unmarshal anomaly: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
