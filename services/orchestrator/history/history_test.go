package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func finding(id string, sev secureauditv1.Severity) *secureauditv1.Finding {
	return &secureauditv1.Finding{
		Id: id, RuleId: "RBAC-001", Title: "t", Severity: sev, SeverityReason: "r", Remediation: "fix",
		Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
	}
}

func TestCompare(t *testing.T) {
	high, crit := secureauditv1.Severity_SEVERITY_HIGH, secureauditv1.Severity_SEVERITY_CRITICAL
	remediated := finding("000000000000000c", high)
	remediated.Remediation = "other"
	infra := finding("00000000000000ff", high)
	infra.Infrastructure = true
	before := []*secureauditv1.Finding{finding("000000000000000a", high), finding("000000000000000b", high), finding("000000000000000d", high), finding("000000000000000c", high), infra}
	current := []*secureauditv1.Finding{finding("000000000000000e", high), finding("000000000000000a", crit), finding("000000000000000b", high), remediated}
	want := &secureauditv1.AuditHistory{
		NewFindingIds: []string{"000000000000000e"},
		Changed: []*secureauditv1.FindingChange{
			{FindingId: "000000000000000a", PreviousSeverity: high, Severity: crit, Fields: []string{"severity"}},
			{FindingId: "000000000000000c", PreviousSeverity: high, Severity: high, Fields: []string{"remediation"}},
		},
		Resolved: []*secureauditv1.Finding{finding("000000000000000d", high)},
	}
	if diff := cmp.Diff(want, Compare(before, current), protocmp.Transform()); diff != "" {
		t.Errorf("Compare (-want +got):\n%s", diff)
	}
}

// fakeStore pages through audits newest first, as the SQLite store does.
type fakeStore struct {
	audits   []*secureauditv1.Audit
	findings map[string][]*secureauditv1.Finding
	read     int
}

// ListClusterAudits counts the audits it returns (read) and filters by
// cluster as the store does.
func (f *fakeStore) ListClusterAudits(_ context.Context, cluster string, limit int, token string) ([]*secureauditv1.Audit, string, error) {
	var audits []*secureauditv1.Audit
	for _, a := range f.audits {
		if cluster == "" || a.GetCluster() == cluster {
			audits = append(audits, a)
		}
	}
	start := 0
	if token != "" {
		for i, a := range audits {
			if a.GetId() == token {
				start = i
			}
		}
	}
	end := min(start+limit, len(audits))
	next := ""
	if end < len(audits) {
		next = audits[end].GetId()
	}
	f.read += end - start
	return audits[start:end], next, nil
}

// StoredFindings encodes the findings as the SQLite store does.
func (f *fakeStore) StoredFindings(_ context.Context, id string) ([]string, [][]byte, error) {
	var ids []string
	var data [][]byte
	for _, x := range f.findings[id] {
		b, err := proto.Marshal(x)
		if err != nil {
			return nil, nil, err
		}
		ids, data = append(ids, x.GetId()), append(data, b)
	}
	return ids, data, nil
}

// TestBaselineSinceMatchesCompare: the baseline's comparison, which
// decodes only the stored findings whose encoding differs from the
// current one's and those resolved, gives what Compare gives on the
// decoded findings, over seeded random pairs of audits (findings kept,
// changed in each compared field or in one Changed ignores, added,
// removed, platform-managed on either side, IDs repeated); the seed is
// logged.
func TestBaselineSinceMatchesCompare(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	sevs := []secureauditv1.Severity{secureauditv1.Severity_SEVERITY_LOW, secureauditv1.Severity_SEVERITY_HIGH, secureauditv1.Severity_SEVERITY_CRITICAL}
	prev := &secureauditv1.Audit{Id: "prev", Cluster: "prod", State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, CreatedAt: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	for round := range 300 {
		var before, current []*secureauditv1.Finding
		for i := range rng.IntN(30) {
			f := finding(fmt.Sprintf("%016x", rng.IntN(40)), sevs[rng.IntN(3)])
			f.Infrastructure = rng.IntN(8) == 0
			f.Controls = []string{"CIS-5.1.1"}
			before = append(before, f)
			if rng.IntN(4) == 0 {
				continue // resolved
			}
			c := proto.CloneOf(f)
			switch rng.IntN(8) {
			case 0:
				c.Severity = sevs[rng.IntN(3)]
			case 1:
				c.Remediation = fmt.Sprintf("fix %d", i)
			case 2:
				c.Description = "changed, but not a field Changed compares"
			case 3:
				c.Infrastructure = !c.Infrastructure
			case 4:
				c.Controls = append(c.Controls, "SOC2-CC6.3")
			}
			current = append(current, c)
		}
		for range rng.IntN(5) {
			current = append(current, finding(fmt.Sprintf("%016x", 40+rng.IntN(20)), sevs[rng.IntN(3)]))
		}
		rng.Shuffle(len(current), func(i, j int) { current[i], current[j] = current[j], current[i] })
		st := &fakeStore{audits: []*secureauditv1.Audit{prev}, findings: map[string][]*secureauditv1.Finding{"prev": before}}
		b, err := LoadBaseline(context.Background(), st, &secureauditv1.Audit{Id: "cur", Cluster: "prod", CreatedAt: timestamppb.New(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))})
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Since(current)
		if err != nil {
			t.Fatal(err)
		}
		want := Compare(before, current)
		want.PreviousAuditId, want.PreviousGeneratedAt = prev.GetId(), prev.GetCreatedAt()
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Fatalf("round %d: Baseline.Since differs from Compare (-Compare +Since):\n%s", round, diff)
		}
	}
}

func TestSince(t *testing.T) {
	at := func(h int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC))
	}
	audit := func(id, cluster string, h int, state secureauditv1.AuditState) *secureauditv1.Audit {
		return &secureauditv1.Audit{Id: id, Cluster: cluster, CreatedAt: at(h), State: state}
	}
	ok, failed := secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, secureauditv1.AuditState_AUDIT_STATE_FAILED
	current := audit("cur", "prod", 10, secureauditv1.AuditState_AUDIT_STATE_RUNNING)
	var audits []*secureauditv1.Audit
	audits = append(audits, audit("later", "prod", 11, ok), current, audit("other", "dev", 9, ok), audit("broken", "prod", 8, failed))
	for i := range 150 { // more than a page of another cluster
		audits = append(audits, audit("dev-old", "dev", 7, ok))
		_ = i
	}
	audits = append(audits, audit("prev", "prod", 6, ok), audit("older", "prod", 5, ok))
	st := &fakeStore{audits: audits, findings: map[string][]*secureauditv1.Finding{
		"prev": {finding("000000000000000a", secureauditv1.Severity_SEVERITY_HIGH)},
	}}
	h, err := Since(context.Background(), st, current, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &secureauditv1.AuditHistory{PreviousAuditId: "prev", PreviousGeneratedAt: at(6), Resolved: []*secureauditv1.Finding{finding("000000000000000a", secureauditv1.Severity_SEVERITY_HIGH)}}
	if diff := cmp.Diff(want, h, protocmp.Transform()); diff != "" {
		t.Errorf("Since (-want +got):\n%s", diff)
	}
	// Only prod's audits are read (later, cur, broken, prev): never the
	// 151 of dev in between.
	if st.read > 5 {
		t.Errorf("Since read %d audits looking for prod's previous one, want at most prod's 5", st.read)
	}
	first, err := Since(context.Background(), st, audit("new", "staging", 12, ok), nil)
	if err != nil || first != nil {
		t.Errorf("Since for a cluster's first audit = %v, %v; want nil, nil", first, err)
	}
}
