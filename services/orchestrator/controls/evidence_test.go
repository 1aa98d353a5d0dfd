package controls_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/controls"
	evlog "secureaudit.dev/services/orchestrator/evidence"
)

// TestEvidence: with an evidence log, a token spike appends a CC3.4 entry
// and an injection anomaly a CC7.2 entry; the exported bundle verifies with
// the log's key and indexes both criteria; normal audits append nothing.
func TestEvidence(t *testing.T) { backends(t, testEvidence) }

func testEvidence(t *testing.T, backend string) {
	ctx := context.Background()
	dir := t.TempDir()
	h := newHarness(t, backend)
	log, err := evlog.New(ctx, h.db, filepath.Join(dir, "evidence.key"))
	if err != nil {
		t.Fatal(err)
	}
	h.mon, err = controls.New(h.st, noop.NewMeterProvider(), discard(), controls.WithEvidence(log),
		controls.WithClock(func() time.Time { h.clock = h.clock.Add(time.Hour); return h.clock }))
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		h.run(audit{})
	}
	if n, err := log.Size(ctx); err != nil || n != 0 {
		t.Fatalf("30 normal audits appended %d evidence entries (%v), want none", n, err)
	}
	spiked := h.run(audit{scale: 10})
	injected := "00000000-0000-4000-8000-000000000999"
	if err := h.mon.Observe(ctx, injected, nil, []*secureauditv1.Anomaly{{
		Kind: secureauditv1.AnomalyKind_ANOMALY_KIND_INJECTION, AuditId: injected, Source: "risk-agent",
		Summary: "INJ-001 in ClusterRoleBinding github-deployer-cluster-admin", Evidence: map[string]string{"rule_id": "INJ-001"},
	}}); err != nil {
		t.Fatal(err)
	}

	b, err := log.Export(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := evidence.Verify(b, log.PublicKey())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The spike is one CC3.4 alert and, as every alert, one CC7.2 anomaly;
	// the injection one CC7.2 anomaly.
	if res.Criteria[controls.CriterionTokens] != 1 || res.Criteria[controls.CriterionAnomalies] != 2 {
		t.Errorf("verified criteria = %v, want CC3.4: 1, CC7.2: 2", res.Criteria)
	}
	type found struct{ control, criterion, subject string }
	var got []found
	var injection *evidence.Entry
	for _, be := range b.Entries {
		var e evidence.Entry
		if err := json.Unmarshal([]byte(be.Record), &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind != evidence.KindAlert || e.Outcome != evidence.OutcomeFail {
			t.Errorf("entry %d: kind %q outcome %q, want alert and fail", be.Index, e.Kind, e.Outcome)
		}
		got = append(got, found{e.Control, strings.Join(e.Criteria, ","), e.Subject})
		if e.Subject == injected {
			injection = &e
		}
	}
	want := []found{
		{controls.ControlTokenBaseline, "CC3.4", spiked},
		{controls.ControlAnomaly, "CC7.2", spiked},
		{controls.ControlAnomaly, "CC7.2", injected},
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	if injection == nil || !strings.Contains(injection.Summary, "ANOMALY_KIND_INJECTION") ||
		!strings.Contains(injection.Summary, "github-deployer-cluster-admin") || !strings.Contains(string(injection.Data), `"INJ-001"`) {
		t.Errorf("injection entry = %+v, want its kind, summary and evidence", injection)
	}
}
