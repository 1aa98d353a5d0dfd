// Package history compares an audit with the previous audit of the same
// cluster: which findings are new, which were resolved, and which changed.
// Findings are matched by their stable ID, a fingerprint of the rule and
// the objects involved.
package history

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Store is what history needs of storage.
type Store interface {
	// ListClusterAudits pages through one cluster's audits, newest first
	// (cluster "": every audit).
	ListClusterAudits(ctx context.Context, cluster string, limit int, pageToken string) ([]*secureauditv1.Audit, string, error)
	// StoredFindings returns an audit's findings in order: each one's ID
	// and its encoding as proto.Marshal wrote it.
	StoredFindings(ctx context.Context, auditID string) (ids []string, data [][]byte, err error)
}

// pageSize is the page read while looking for the previous audit.
const pageSize = 100

// Previous returns the newest succeeded audit of the same cluster created
// before a, or nil when a is the cluster's first. It reads only that
// cluster's audits (the store filters by cluster), not the whole fleet's.
func Previous(ctx context.Context, st Store, a *secureauditv1.Audit) (*secureauditv1.Audit, error) {
	token := ""
	for {
		audits, next, err := st.ListClusterAudits(ctx, a.GetCluster(), pageSize, token)
		if err != nil {
			return nil, fmt.Errorf("list audits: %w", err)
		}
		for _, b := range audits {
			if b.GetId() == a.GetId() || b.GetCluster() != a.GetCluster() ||
				b.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				continue
			}
			if !b.GetCreatedAt().AsTime().After(a.GetCreatedAt().AsTime()) {
				return b, nil
			}
		}
		if next == "" {
			return nil, nil
		}
		token = next
	}
}

// Since compares the main findings of a with those of the previous audit
// of its cluster. It returns nil when there is no previous audit.
func Since(ctx context.Context, st Store, a *secureauditv1.Audit, current []*secureauditv1.Finding) (*secureauditv1.AuditHistory, error) {
	b, err := LoadBaseline(ctx, st, a)
	if err != nil {
		return nil, err
	}
	return b.Since(current)
}

// Baseline is what an audit is compared with: the previous audit of its
// cluster and that audit's findings as stored, read ahead of the
// comparison (an audit reads it while the risk-agent assesses). The
// findings stay encoded: most are unchanged from one audit to the next,
// and a finding whose encoding is the stored one is unchanged without
// being decoded.
type Baseline struct {
	Audit *secureauditv1.Audit
	ids   []string
	data  [][]byte
}

// LoadBaseline reads the previous audit of a's cluster (Previous) and its
// findings. It returns nil when a is the cluster's first audit.
func LoadBaseline(ctx context.Context, st Store, a *secureauditv1.Audit) (*Baseline, error) {
	prev, err := Previous(ctx, st, a)
	if err != nil || prev == nil {
		return nil, err
	}
	ids, data, err := st.StoredFindings(ctx, prev.GetId())
	if err != nil {
		return nil, fmt.Errorf("findings of audit %s: %w", prev.GetId(), err)
	}
	if len(ids) != len(data) {
		return nil, fmt.Errorf("findings of audit %s: %d IDs for %d findings", prev.GetId(), len(ids), len(data))
	}
	return &Baseline{Audit: prev, ids: ids, data: data}, nil
}

// Since compares current with the baseline's findings as Compare does,
// decoding only the stored findings it must: those whose encoding differs
// from the current finding of the same ID, and those resolved. It returns
// nil for a nil baseline (no previous audit).
func (b *Baseline) Since(current []*secureauditv1.Finding) (*secureauditv1.AuditHistory, error) {
	if b == nil {
		return nil, nil
	}
	at := make(map[string]int, len(b.ids))
	dup := map[string]bool{} // IDs stored more than once
	for i, id := range b.ids {
		if _, ok := at[id]; ok {
			dup[id] = true
		}
		at[id] = i
	}
	decode := func(i int) (*secureauditv1.Finding, error) {
		f := &secureauditv1.Finding{}
		if err := proto.Unmarshal(b.data[i], f); err != nil {
			return nil, fmt.Errorf("decode finding %s of audit %s: %w", b.ids[i], b.Audit.GetId(), err)
		}
		return f, nil
	}
	// old returns the stored finding of id that Compare compares with: the
	// last one not platform-managed, or nil.
	old := func(id string) (*secureauditv1.Finding, error) {
		indices := []int{at[id]}
		if dup[id] { // rare: every stored finding of the ID, in order
			indices = indices[:0]
			for i, x := range b.ids {
				if x == id {
					indices = append(indices, i)
				}
			}
		}
		var last *secureauditv1.Finding
		for _, i := range indices {
			p, err := decode(i)
			if err != nil {
				return nil, err
			}
			if !p.GetInfrastructure() {
				last = p
			}
		}
		return last, nil
	}
	h := &secureauditv1.AuditHistory{PreviousAuditId: b.Audit.GetId(), PreviousGeneratedAt: b.Audit.GetCreatedAt()}
	seen := map[string]bool{}
	var enc []byte
	for _, f := range current {
		if f.GetInfrastructure() {
			continue
		}
		seen[f.GetId()] = true
		i, ok := at[f.GetId()]
		if !ok {
			h.NewFindingIds = append(h.NewFindingIds, f.GetId())
			continue
		}
		if !dup[f.GetId()] {
			var err error
			// Encoded as the store encodes: the same bytes are the same
			// finding (and not platform-managed, as f is not).
			if enc, err = (proto.MarshalOptions{}).MarshalAppend(enc[:0], f); err == nil && bytes.Equal(enc, b.data[i]) {
				continue
			}
		}
		p, err := old(f.GetId())
		if err != nil {
			return nil, err
		}
		if p == nil {
			h.NewFindingIds = append(h.NewFindingIds, f.GetId())
			continue
		}
		if fields := Changed(p, f); len(fields) > 0 {
			h.Changed = append(h.Changed, &secureauditv1.FindingChange{
				FindingId: f.GetId(), PreviousSeverity: p.GetSeverity(), Severity: f.GetSeverity(), Fields: fields,
			})
		}
	}
	for id := range at {
		if seen[id] {
			continue
		}
		p, err := old(id)
		if err != nil {
			return nil, err
		}
		if p != nil {
			h.Resolved = append(h.Resolved, p)
		}
	}
	sortHistory(h)
	return h, nil
}

// Compare matches findings by ID, ignoring platform-managed ones: new are
// in current only, resolved in before only, changed in both with a
// different severity, title, role, scope, matched rules, controls or
// remediation. Its lists are sorted by finding ID.
func Compare(before, current []*secureauditv1.Finding) *secureauditv1.AuditHistory {
	old := map[string]*secureauditv1.Finding{}
	for _, f := range before {
		if !f.GetInfrastructure() {
			old[f.GetId()] = f
		}
	}
	h := &secureauditv1.AuditHistory{}
	seen := map[string]bool{}
	for _, f := range current {
		if f.GetInfrastructure() {
			continue
		}
		seen[f.GetId()] = true
		p, ok := old[f.GetId()]
		if !ok {
			h.NewFindingIds = append(h.NewFindingIds, f.GetId())
			continue
		}
		if fields := Changed(p, f); len(fields) > 0 {
			h.Changed = append(h.Changed, &secureauditv1.FindingChange{
				FindingId: f.GetId(), PreviousSeverity: p.GetSeverity(), Severity: f.GetSeverity(), Fields: fields,
			})
		}
	}
	for id, f := range old {
		if !seen[id] {
			h.Resolved = append(h.Resolved, f)
		}
	}
	sortHistory(h)
	return h
}

// sortHistory sorts a history's lists by finding ID.
func sortHistory(h *secureauditv1.AuditHistory) {
	sort.Strings(h.NewFindingIds)
	sort.Slice(h.Changed, func(i, j int) bool { return h.Changed[i].GetFindingId() < h.Changed[j].GetFindingId() })
	sort.Slice(h.Resolved, func(i, j int) bool { return h.Resolved[i].GetId() < h.Resolved[j].GetId() })
}

// Changed names the fields that differ between two versions of a finding.
func Changed(a, b *secureauditv1.Finding) []string {
	var out []string
	check := func(name string, x, y proto.Message) {
		if !proto.Equal(x, y) {
			out = append(out, name)
		}
	}
	if a.GetSeverity() != b.GetSeverity() {
		out = append(out, "severity")
	}
	if a.GetTitle() != b.GetTitle() {
		out = append(out, "title")
	}
	check("role", a.GetRole(), b.GetRole())
	check("scope", a.GetScope(), b.GetScope())
	if !equalRules(a.GetMatchedRules(), b.GetMatchedRules()) {
		out = append(out, "matched_rules")
	}
	if fmt.Sprint(a.GetControls()) != fmt.Sprint(b.GetControls()) {
		out = append(out, "controls")
	}
	if a.GetRemediation() != b.GetRemediation() {
		out = append(out, "remediation")
	}
	return out
}

func equalRules(a, b []*secureauditv1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
