package controls_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/metric/noop"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/services/orchestrator/controls"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// backends runs f once per storage backend.
func backends(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range storagetest.Backends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type harness struct {
	t       *testing.T
	db      *storage.DB
	st      *store.Store
	mon     *controls.Monitor
	n       int
	rng     *rand.Rand
	clock   time.Time
	mu      sync.Mutex
	webhook []map[string]any
}

func newHarness(t *testing.T, backend string) *harness {
	t.Helper()
	db := storagetest.Open(t, storagetest.DSN(t, backend))
	st := store.New(db)
	h := &harness{t: t, db: db, st: st, rng: rand.New(rand.NewPCG(1, 2)), clock: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		h.mu.Lock()
		h.webhook = append(h.webhook, m)
		h.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	var err error
	h.mon, err = controls.New(st, noop.NewMeterProvider(), discard(),
		controls.WithWebhook(hook.URL, hook.Client()),
		controls.WithClock(func() time.Time { h.clock = h.clock.Add(time.Hour); return h.clock }))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// audit is one audit's calls.
type audit struct {
	// scale multiplies the tokens per item (1 is normal).
	scale float64
	// truncated is the share of truncated calls.
	truncated float64
	model     string
}

// run records one audit with realistic noise: 20 to 200 items in batches
// of 40, about 150 tokens per item with 10% log-normal noise per call, and
// the given truncation.
func (h *harness) run(a audit) string {
	h.t.Helper()
	h.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", h.n)
	if a.model == "" {
		a.model = "gpt-test-2026-01-01"
	}
	if a.scale == 0 {
		a.scale = 1
	}
	items := 20 + h.rng.IntN(181)
	var calls []*secureauditv1.ModelCall
	for left := items; left > 0; left -= 40 {
		n := min(left, 40)
		perItem := 150 * a.scale * math.Exp(0.1*h.rng.NormFloat64())
		in := uint64(float64(n) * perItem * 0.7)
		out := uint64(float64(n) * perItem * 0.3)
		trunc := h.rng.Float64() < a.truncated
		finish := "stop"
		if trunc {
			finish = "length"
		}
		calls = append(calls, &secureauditv1.ModelCall{
			Provider: "openai", Operation: "chat", RequestModel: "gpt-test", ResponseModel: a.model, TemplateVersion: "t1",
			InputTokens: in, OutputTokens: out, Items: uint32(n), FinishReason: finish, Truncated: trunc,
		})
	}
	if err := h.mon.Observe(context.Background(), id, calls, nil); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) alerts() map[secureauditv1.TokenAlertKind]int {
	h.t.Helper()
	list, err := h.st.TokenAlerts(context.Background(), 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[secureauditv1.TokenAlertKind]int{}
	for _, a := range list {
		out[a.GetKind()]++
	}
	return out
}

// TestQuietOnNormalAudits: 50 normal audits with realistic noise raise no
// alert, for several random seeds.
func TestQuietOnNormalAudits(t *testing.T) { backends(t, testQuietOnNormalAudits) }

func testQuietOnNormalAudits(t *testing.T, backend string) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newHarness(t, backend)
			h.rng = rand.New(rand.NewPCG(seed, seed*7))
			for range 50 {
				h.run(audit{truncated: 0.02})
			}
			if got := h.alerts(); len(got) != 0 {
				t.Errorf("alerts over 50 normal audits: %v", got)
			}
			b, err := h.mon.Baselines(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 1 || !b[0].GetWarm() || b[0].GetSamples() != 50 || math.Abs(b[0].GetMedian()-150) > 15 {
				t.Errorf("baselines = %v, want one warm baseline near 150 tokens per item", b)
			}
		})
	}
}

func TestAlerts(t *testing.T) { backends(t, testAlerts) }

func testAlerts(t *testing.T, backend string) {
	for _, tc := range []struct {
		name  string
		after []audit
		want  map[secureauditv1.TokenAlertKind]int
	}{
		{"spike", []audit{{scale: 10}}, map[secureauditv1.TokenAlertKind]int{secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_SPIKE: 1}},
		{"level shift", []audit{{scale: 1.6}, {scale: 1.6}, {scale: 1.6}, {scale: 1.6}, {scale: 1.6}, {scale: 1.6}, {scale: 1.6}},
			map[secureauditv1.TokenAlertKind]int{secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_LEVEL_SHIFT: 1}},
		{"truncation", []audit{{truncated: 1}, {truncated: 1}, {truncated: 1}, {truncated: 1}, {truncated: 1}},
			map[secureauditv1.TokenAlertKind]int{secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_TRUNCATION: 1}},
		{"model change", []audit{{model: "gpt-test-2026-06-01"}},
			map[secureauditv1.TokenAlertKind]int{secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_MODEL_CHANGE: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, backend)
			var changed []string
			h.mon.OnModelChange(func(_ context.Context, answering string) { changed = append(changed, answering) })
			for range 30 {
				h.run(audit{})
			}
			for _, a := range tc.after {
				h.run(a)
			}
			got := h.alerts()
			for k, n := range tc.want {
				if got[k] != n {
					t.Errorf("%s alerts = %d, want %d (all: %v)", k, got[k], n, got)
				}
			}
			wantChanged := 0
			if tc.want[secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_MODEL_CHANGE] > 0 {
				wantChanged = 1
				if changed[0] != "openai/gpt-test-2026-06-01@t1" {
					t.Errorf("model change hook got %q", changed[0])
				}
			}
			if len(changed) != wantChanged {
				t.Errorf("model change hook called %d times, want %d", len(changed), wantChanged)
			}
			// Each alert is also an anomaly event and a webhook post.
			anomalies, err := h.st.Anomalies(context.Background(), "", 100)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, n := range got {
				total += n
			}
			if len(anomalies) != total || len(h.webhook) != total {
				t.Errorf("%d alerts, %d anomalies, %d webhook posts", total, len(anomalies), len(h.webhook))
			}
		})
	}
}

// TestAnomaliesFromAssessment: the risk-agent's anomalies are stored with
// their evidence and listed newest first.
func TestAnomaliesFromAssessment(t *testing.T) { backends(t, testAnomaliesFromAssessment) }

func testAnomaliesFromAssessment(t *testing.T, backend string) {
	h := newHarness(t, backend)
	id := "00000000-0000-4000-8000-000000000001"
	in := []*secureauditv1.Anomaly{
		{Kind: secureauditv1.AnomalyKind_ANOMALY_KIND_INJECTION, AuditId: id, Source: "risk-agent", Summary: "INJ-001", Evidence: map[string]string{"rule_id": "INJ-001"}},
		{Kind: secureauditv1.AnomalyKind_ANOMALY_KIND_CANARY_LEAK, AuditId: id, Source: "risk-agent", Summary: "canary"},
	}
	if err := h.mon.Observe(context.Background(), id, nil, in); err != nil {
		t.Fatal(err)
	}
	srv := controls.NewServer(h.mon, discard())
	resp, err := srv.ListAnomalies(context.Background(), &secureauditv1.ListAnomaliesRequest{AuditId: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetAnomalies()) != 2 || resp.GetAnomalies()[0].GetKind() != secureauditv1.AnomalyKind_ANOMALY_KIND_CANARY_LEAK ||
		resp.GetAnomalies()[1].GetEvidence()["rule_id"] != "INJ-001" || resp.GetAnomalies()[1].GetTime() == nil {
		t.Errorf("anomalies = %v", resp.GetAnomalies())
	}
}

// TestTap: refusals logged by platform/authz become anomaly events; other
// records do not.
func TestTap(t *testing.T) { backends(t, testTap) }

func testTap(t *testing.T, backend string) {
	h := newHarness(t, backend)
	log := slog.New(controls.Tap(slog.NewTextHandler(io.Discard, nil), h.mon)).With("service", "orchestrator")
	log.Warn("denied call", "method", "/secureaudit.v1.AuditService/StartAudit", "caller", "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent")
	log.Warn("denied call", "method", "/secureaudit.v1.AuditService/GetAudit", "caller", "spiffe://other.example/x")
	log.Warn("unauthenticated call", "method", "/secureaudit.v1.AuditService/ListAudits", "reason", "no client certificate")
	log.Info("audit started")
	list, err := h.st.Anomalies(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []secureauditv1.AnomalyKind
	for _, a := range list {
		kinds = append(kinds, a.GetKind())
	}
	want := []secureauditv1.AnomalyKind{
		secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY,
		secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY,
		secureauditv1.AnomalyKind_ANOMALY_KIND_DENIED_RPC,
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("anomaly kinds = %v, want %v", kinds, want)
	}
	if list[2].GetEvidence()["method"] != "/secureaudit.v1.AuditService/StartAudit" {
		t.Errorf("evidence = %v", list[2].GetEvidence())
	}
}

// TestModelCallsPerAudit: the calls are stored per audit and returned.
func TestModelCallsPerAudit(t *testing.T) { backends(t, testModelCallsPerAudit) }

func testModelCallsPerAudit(t *testing.T, backend string) {
	h := newHarness(t, backend)
	id := h.run(audit{})
	srv := controls.NewServer(h.mon, discard())
	resp, err := srv.GetTokenControls(context.Background(), &secureauditv1.GetTokenControlsRequest{AuditId: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetCalls()) == 0 || len(resp.GetBaselines()) != 1 || resp.GetBaselines()[0].GetWarm() {
		t.Errorf("response = %v, want the audit's calls and one cold baseline", resp)
	}
}

// TestTapAggregatesPerSource: a flood of refused calls reaches the store as
// a few events per source and method, whose counts add up exactly; a
// denial of a valid identity among them is stored at once; a window that
// ends records what it counted.
func TestTapAggregatesPerSource(t *testing.T) { backends(t, testTapAggregatesPerSource) }

func testTapAggregatesPerSource(t *testing.T, backend string) {
	h := newHarness(t, backend)
	tap := controls.NewTap(slog.NewTextHandler(io.Discard, nil), h.mon, time.Hour)
	log := slog.New(tap).With("service", "orchestrator")
	for range 500 {
		log.Warn("unauthenticated call", "method", "/secureaudit.v1.AuditService/ListAudits", "reason", "no client certificate", "address", "10.0.0.1")
	}
	log.Warn("denied call", "method", "/secureaudit.v1.AuditService/StartAudit", "caller", "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent")
	for range 300 {
		log.Warn("unauthenticated call", "method", "/secureaudit.v1.AuditService/ListAudits", "reason", "no client certificate", "address", "10.0.0.2")
	}
	counts := func() (map[string]int, int) {
		list, err := h.st.Anomalies(context.Background(), "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, a := range list {
			n, err := strconv.Atoi(a.GetEvidence()["count"])
			if err != nil {
				t.Fatalf("anomaly %v has no count", a)
			}
			got[a.GetEvidence()["address"]+a.GetEvidence()["caller"]] += n
		}
		return got, len(list)
	}
	got, rows := counts()
	if diff := cmp.Diff(map[string]int{"10.0.0.1": 1, "10.0.0.2": 1, "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent": 1}, got); diff != "" || rows != 3 {
		t.Errorf("before the windows end: %d rows, counts (-want +got):\n%s", rows, diff)
	}
	tap.Flush(context.Background())
	got, rows = counts()
	if diff := cmp.Diff(map[string]int{"10.0.0.1": 500, "10.0.0.2": 300, "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent": 1}, got); diff != "" || rows != 5 {
		t.Errorf("after: %d rows, counts (-want +got):\n%s", rows, diff)
	}

	// A short window records on its own.
	short := slog.New(controls.NewTap(slog.NewTextHandler(io.Discard, nil), h.mon, 20*time.Millisecond))
	for range 3 {
		short.Warn("unauthenticated call", "method", "/secureaudit.v1.AuditService/GetAudit", "address", "10.0.0.3")
	}
	deadline := time.Now().Add(10 * time.Second)
	for got, _ := counts(); got["10.0.0.3"] != 3; got, _ = counts() {
		if time.Now().After(deadline) {
			t.Fatalf("the window's count was not recorded: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
