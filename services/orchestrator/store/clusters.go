package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// ErrExists is returned when registering a cluster whose name is taken.
var ErrExists = errors.New("already exists")

// CreateCluster stores a new cluster; it wraps ErrExists when one of that
// name is registered (on either backend, by the primary key: two replicas
// registering one name at once store one).
func (s *Store) CreateCluster(ctx context.Context, c *secureauditv1.Cluster) error {
	data, err := proto.Marshal(c)
	if err != nil {
		return fmt.Errorf("marshal cluster: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO clusters (name, agent_address, agent_spiffe_id, registered_ns, data)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		c.GetName(), c.GetAgentAddress(), c.GetAgentSpiffeId(), c.GetRegisteredAt().AsTime().UnixNano(), data)
	if err != nil {
		return fmt.Errorf("register cluster %s: %w", c.GetName(), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("cluster %s: %w", c.GetName(), ErrExists)
	}
	return nil
}

// ReplaceCluster stores a cluster, replacing a registration of its name.
func (s *Store) ReplaceCluster(ctx context.Context, c *secureauditv1.Cluster) error {
	data, err := proto.Marshal(c)
	if err != nil {
		return fmt.Errorf("marshal cluster: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO clusters (name, agent_address, agent_spiffe_id, registered_ns, data)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET agent_address = excluded.agent_address,
		agent_spiffe_id = excluded.agent_spiffe_id, registered_ns = excluded.registered_ns, data = excluded.data`,
		c.GetName(), c.GetAgentAddress(), c.GetAgentSpiffeId(), c.GetRegisteredAt().AsTime().UnixNano(), data); err != nil {
		return fmt.Errorf("register cluster %s: %w", c.GetName(), err)
	}
	return nil
}

// GetCluster returns a registered cluster; it wraps ErrNotFound when there
// is none of that name.
func (s *Store) GetCluster(ctx context.Context, name string) (*secureauditv1.Cluster, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM clusters WHERE name = ?`, name).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cluster %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get cluster %s: %w", name, err)
	}
	return unmarshalCluster(data)
}

// ListClusters returns every registered cluster, by name.
func (s *Store) ListClusters(ctx context.Context) ([]*secureauditv1.Cluster, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM clusters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.Cluster
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		c, err := unmarshalCluster(data)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return out, nil
}

// DeleteCluster removes a registered cluster; it wraps ErrNotFound when
// there is none. Its audits stay.
func (s *Store) DeleteCluster(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM clusters WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("deregister cluster %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("cluster %s: %w", name, ErrNotFound)
	}
	return nil
}

// LastAudit returns a cluster's newest audit, or nil before its first.
func (s *Store) LastAudit(ctx context.Context, cluster string) (*secureauditv1.Audit, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM audits WHERE cluster = ? ORDER BY created_ns DESC, id DESC LIMIT 1`, cluster).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last audit of %s: %w", cluster, err)
	}
	return unmarshalAudit(data)
}

func unmarshalCluster(data []byte) (*secureauditv1.Cluster, error) {
	c := &secureauditv1.Cluster{}
	if err := proto.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("unmarshal cluster: %w", err)
	}
	return c, nil
}

// WorstFindings returns up to n of an audit's findings, most severe first
// (in stored order within a severity), leaving out findings on
// platform-managed identities and those whose ID is in skip (accepted
// risks). Rows past the n-th kept are not read.
func (s *Store) WorstFindings(ctx context.Context, auditID string, n int, skip map[string]bool) ([]*secureauditv1.Finding, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, data FROM findings WHERE audit_id = ? ORDER BY severity, idx`, auditID)
	if err != nil {
		return nil, fmt.Errorf("worst findings of %s: %w", auditID, err)
	}
	defer rows.Close()
	var out []*secureauditv1.Finding
	for len(out) < n && rows.Next() {
		var id string
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return nil, fmt.Errorf("worst findings of %s: %w", auditID, err)
		}
		if skip[id] {
			continue
		}
		f := &secureauditv1.Finding{}
		if err := proto.Unmarshal(data, f); err != nil {
			return nil, fmt.Errorf("unmarshal finding of %s: %w", auditID, err)
		}
		if !f.GetInfrastructure() {
			out = append(out, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("worst findings of %s: %w", auditID, err)
	}
	return out, nil
}
