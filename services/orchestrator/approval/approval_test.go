package approval

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// fakeLog records appended entries.
type fakeLog struct {
	mu      sync.Mutex
	entries []evidence.Entry
}

func (f *fakeLog) Append(_ context.Context, e evidence.Entry) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
	return int64(len(f.entries) - 1), nil
}

func (f *fakeLog) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.entries {
		out = append(out, e.Kind+":"+e.Subject+":"+e.Outcome)
	}
	return out
}

const reportManifest = `apiVersion: secureaudit.dev/v1
kind: AgentScope
metadata: {name: report-agent, version: 1}
spec:
  domain: test
  identity: spiffe://secureaudit.local/ns/secureaudit/sa/report-agent
  methods:
    - name: /secureaudit.v1.ReportService/Render
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]
    - name: /secureaudit.v1.ReportService/RenderFleet
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]
    - name: /secureaudit.v1.ReportService/RenderFleetStream
      callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]
  credential: {kind: none}
`

// widened is the same manifest with one more caller: a changed scope.
var widened = strings.Replace(reportManifest, "callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator]",
	"callers: [spiffe://secureaudit.local/ns/secureaudit/sa/orchestrator, spiffe://secureaudit.local/ns/secureaudit/sa/cli]", 1)

type reportServer struct {
	secureauditv1.UnimplementedReportServiceServer
}

func parse(t *testing.T, s string) *scope.Manifest {
	t.Helper()
	m, err := scope.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newRegistry returns a registry on a new database of the backend.
func newRegistry(t *testing.T, backend string, rec Recorder, manifests map[string]*scope.Manifest, opts ...Option) *Registry {
	t.Helper()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	db := storagetest.Open(t, storagetest.DSN(t, backend))
	return New(db, rec, manifests, rpctest.Logger(t), append([]Option{WithClock(func() time.Time { return now })}, opts...)...)
}

// backends runs f once per storage backend.
func backends(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range storagetest.Backends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// agent serves the report-agent with the given manifest and returns the
// orchestrator's connection to it.
func agent(t *testing.T, p *rpctest.PKI, manifest string) Agent {
	t.Helper()
	addr := p.Serve(t, identity.ReportAgent, []byte(manifest), func(s *grpc.Server) {
		secureauditv1.RegisterReportServiceServer(s, reportServer{})
	})
	return Agent{Workload: identity.ReportAgent, Conn: p.Dial(t, addr, identity.ReportAgent, identity.Orchestrator)}
}

func TestQuarantine(t *testing.T) { backends(t, testQuarantine) }

func testQuarantine(t *testing.T, backend string) {
	p := rpctest.NewPKI(t)
	bundled := parse(t, reportManifest)
	tests := []struct {
		name      string
		serve     string
		approve   string // digest to approve first; "dev" for a development approval
		wantState secureauditv1.ScopeState
		wantWhy   string
		wantKinds []string
	}{
		{"approved digest", reportManifest, bundled.Digest(), secureauditv1.ScopeState_SCOPE_STATE_APPROVED, "",
			[]string{"approval:report-agent:info", "control.result:report-agent:pass"}},
		{"development approval", reportManifest, "dev", secureauditv1.ScopeState_SCOPE_STATE_APPROVED, "",
			[]string{"approval:report-agent:info", "control.result:report-agent:pass"}},
		{"never approved", reportManifest, "", secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED, "never been approved",
			[]string{"alert:report-agent:fail"}},
		{"changed since approval", widened, bundled.Digest(), secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED, "scope manifest changed",
			[]string{"approval:report-agent:info", "alert:report-agent:fail"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &fakeLog{}
			r := newRegistry(t, backend, rec, map[string]*scope.Manifest{identity.ReportAgent: bundled})
			r.SetAgents([]Agent{agent(t, p, tc.serve)})
			ctx := context.Background()
			switch tc.approve {
			case "":
			case "dev":
				if err := r.ApproveDevelopment(ctx, identity.ID(identity.Orchestrator).String()); err != nil {
					t.Fatal(err)
				}
			default:
				if _, err := r.Approve(ctx, &secureauditv1.ScopeApproval{Workload: identity.ReportAgent, Digest: tc.approve, Approver: "alice", Ticket: "SEC-1"}); err != nil {
					t.Fatal(err)
				}
			}
			st, err := r.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st) != 1 || st[0].GetState() != tc.wantState || !strings.Contains(st[0].GetReason(), tc.wantWhy) {
				t.Fatalf("Check = %v, want state %s with reason containing %q", st, tc.wantState, tc.wantWhy)
			}
			if st[0].GetPresentedDigest() != parse(t, tc.serve).Digest() {
				t.Errorf("presented digest %s, want %s", st[0].GetPresentedDigest(), parse(t, tc.serve).Digest())
			}
			err = r.Admit(ctx)
			var qe *QuarantineError
			if quarantined := tc.wantState == secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED; quarantined != errors.As(err, &qe) {
				t.Errorf("Admit = %v, want a quarantine error: %v", err, quarantined)
			}
			if qe != nil && !strings.Contains(qe.Error(), "report-agent is quarantined") {
				t.Errorf("Admit error %q does not name the agent", qe)
			}
			// A second check with no change appends nothing more.
			if got := strings.Join(rec.kinds(), " "); got != strings.Join(tc.wantKinds, " ") {
				t.Errorf("evidence %v, want %v", rec.kinds(), tc.wantKinds)
			}
			if tc.approve == "dev" && (!strings.Contains(rec.entries[0].Summary, "DEVELOPMENT") || rec.entries[0].Criteria[0] != "CC5.2") {
				t.Errorf("development approval not loudly named: %+v", rec.entries[0])
			}
		})
	}
}

func TestUnreachableAgentIsNotQuarantined(t *testing.T) {
	backends(t, testUnreachableAgentIsNotQuarantined)
}

func testUnreachableAgentIsNotQuarantined(t *testing.T, backend string) {
	p := rpctest.NewPKI(t)
	conn := p.Dial(t, "127.0.0.1:1", identity.ReportAgent, identity.Orchestrator)
	r := newRegistry(t, backend, &fakeLog{}, nil)
	r.SetAgents([]Agent{{Workload: identity.ReportAgent, Conn: conn}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := r.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].GetState() != secureauditv1.ScopeState_SCOPE_STATE_UNREACHABLE {
		t.Errorf("state %s, want unreachable", st[0].GetState())
	}
	if err := r.Admit(ctx); err != nil {
		t.Errorf("Admit = %v; an unreachable agent is the pipeline's to report", err)
	}
}

func TestReview(t *testing.T) { backends(t, testReview) }

func testReview(t *testing.T, backend string) {
	rec := &fakeLog{}
	m := parse(t, reportManifest)
	r := newRegistry(t, backend, rec, map[string]*scope.Manifest{identity.ReportAgent: m})
	ctx := context.Background()
	if _, err := r.Approve(ctx, &secureauditv1.ScopeApproval{Workload: identity.ReportAgent, Digest: m.Digest(), Approver: "alice", Ticket: "SEC-1"}); err != nil {
		t.Fatal(err)
	}
	orch, cli := identity.ID(identity.Orchestrator).String(), identity.ID(identity.CLI).String()
	render := "/secureaudit.v1.ReportService/Render"
	for _, c := range []rpc.Call{
		{Server: identity.ReportAgent, Method: render, Caller: orch, Code: codes.OK},
		{Server: identity.ReportAgent, Method: render, Caller: orch, Code: codes.OK},
		{Server: identity.ReportAgent, Method: render, Caller: cli, Code: codes.PermissionDenied},
		{Server: identity.ReportAgent, Method: "/secureaudit.v1.ReportService/Other", Caller: orch, Code: codes.OK},
	} {
		r.Observe(ctx, c)
	}
	rev, md, idx, err := r.Review(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Deviations != 2 || idx != -1 {
		t.Errorf("deviations %d, evidence index %d; want 2 and -1", rev.Deviations, idx)
	}
	for _, want := range []string{"caller refused", "method not in the manifest", "by alice, ticket SEC-1", "| " + render + " | " + orch + " | OK | 2 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("review does not contain %q:\n%s", want, md)
		}
	}

	// A recorded review is evidence and starts a new period.
	if _, _, idx, err = r.Review(ctx, "bob"); err != nil || idx < 0 {
		t.Fatalf("recorded review: index %d, %v", idx, err)
	}
	if last := rec.entries[len(rec.entries)-1]; last.Control != "scope-review" || last.Outcome != evidence.OutcomeFail {
		t.Errorf("review evidence %+v, want a failed scope-review result", last)
	}
	rev, md, _, err = r.Review(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Deviations != 0 || !strings.Contains(md, "no calls") || rev.Since.IsZero() {
		t.Errorf("after the review: %d deviations, since %v:\n%s", rev.Deviations, rev.Since, md)
	}
}

// TestCheckAgent: an agent the orchestrator dials for one audit (a
// registered cluster's rbac-agent) is checked as the configured ones are:
// refused while it presents a manifest never approved or changed since,
// the error and the evidence alert naming where it runs; admitted once its
// digest is approved.
func TestCheckAgent(t *testing.T) { backends(t, testCheckAgent) }

func testCheckAgent(t *testing.T, backend string) {
	p := rpctest.NewPKI(t)
	bundled := parse(t, reportManifest)
	rec := &fakeLog{}
	r := newRegistry(t, backend, rec, map[string]*scope.Manifest{identity.ReportAgent: bundled})
	ctx := context.Background()
	const where = "cluster aks-prod's agent at 10.0.0.7:8443"
	conn := agent(t, p, reportManifest).Conn
	err := r.CheckAgent(ctx, identity.ReportAgent, where, conn)
	var qe *QuarantineError
	if !errors.As(err, &qe) || !strings.Contains(err.Error(), where+": scope manifest "+bundled.Digest()+" has never been approved") {
		t.Fatalf("unapproved agent: %v, want a quarantine error naming where it runs", err)
	}
	if got := strings.Join(rec.kinds(), " "); got != "alert:report-agent:fail" || !strings.Contains(rec.entries[0].Summary, where) {
		t.Errorf("evidence %v (%q), want one alert naming where the agent runs", rec.kinds(), rec.entries[0].Summary)
	}
	if _, err := r.Approve(ctx, &secureauditv1.ScopeApproval{Workload: identity.ReportAgent, Digest: bundled.Digest(), Approver: "alice", Ticket: "SEC-1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckAgent(ctx, identity.ReportAgent, where, conn); err != nil {
		t.Errorf("approved agent refused: %v", err)
	}
	changed := agent(t, p, widened).Conn
	if err := r.CheckAgent(ctx, identity.ReportAgent, "cluster aks-dev's agent at 10.0.0.8:8443", changed); !errors.As(err, &qe) || !strings.Contains(err.Error(), "scope manifest changed") {
		t.Errorf("changed manifest: %v, want a quarantine error", err)
	}
}
