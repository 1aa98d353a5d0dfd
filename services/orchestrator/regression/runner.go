package regression

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
)

// ErrNoCase is returned when no reference case has a requested name.
var ErrNoCase = errors.New("no reference case of that name")

// Triggers of a run.
const (
	TriggerManual      = "manual"
	TriggerSchedule    = "schedule"
	TriggerModelChange = "model-change"
)

// Criteria are the SOC 2 criteria a run is evidence for.
var Criteria = []string{"CC4.1", "CC9.2"}

// Recorder appends entries to the evidence log.
type Recorder interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
}

// Runner runs the reference cases, one run at a time.
type Runner struct {
	agents Agents
	rec    Recorder
	log    *slog.Logger
	cases  func() ([]*Case, error)
	now    func() time.Time

	run  sync.Mutex
	mu   sync.Mutex
	seen string // the answering model and template of the last run
}

// Option configures a Runner.
type Option func(*Runner)

// WithCases replaces the embedded reference cases, for tests.
func WithCases(load func() ([]*Case, error)) Option { return func(r *Runner) { r.cases = load } }

// NewRunner returns a runner over the live agents.
func NewRunner(agents Agents, rec Recorder, log *slog.Logger, opts ...Option) *Runner {
	r := &Runner{agents: agents, rec: rec, log: log, cases: LoadCases, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run runs the named cases (all when names is empty), appends the run to
// the evidence log, and raises an alert when it fails.
func (r *Runner) Run(ctx context.Context, trigger string, names []string) (*secureauditv1.RegressionRun, error) {
	r.run.Lock()
	defer r.run.Unlock()
	cases, err := r.cases()
	if err != nil {
		return nil, err
	}
	run := &secureauditv1.RegressionRun{Id: uuid.NewString(), StartedAt: timestamppb.New(r.now()), Trigger: trigger, Passed: true, EvidenceIndex: -1}
	var models []string
	for _, c := range cases {
		if len(names) > 0 && !slices.Contains(names, c.Name) {
			continue
		}
		out, auditID, err := RunCase(ctx, r.agents, c)
		var res *secureauditv1.RegressionCase
		if err != nil {
			res = &secureauditv1.RegressionCase{Name: c.Name, ExpectedFindings: uint32(len(c.Approved.Findings)), Problems: []string{err.Error()}}
		} else {
			res = Compare(c, out)
			if rs := out.Reasoning; rs != nil {
				models = append(models, rs.GetProvider()+"/"+rs.GetModel()+"@"+rs.GetTemplateVersion())
			}
		}
		res.AuditId = auditID
		run.Passed = run.Passed && res.GetPassed()
		run.Cases = append(run.Cases, res)
	}
	if len(run.Cases) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoCase, strings.Join(names, ", "))
	}
	run.FinishedAt = timestamppb.New(r.now())
	r.mu.Lock()
	slices.Sort(models)
	r.seen = strings.Join(slices.Compact(models), ",")
	r.mu.Unlock()
	r.record(ctx, run)
	return run, nil
}

func (r *Runner) record(ctx context.Context, run *secureauditv1.RegressionRun) {
	data, err := protojson.Marshal(run)
	if err != nil {
		r.log.ErrorContext(ctx, "encode regression run", "error", err.Error())
		return
	}
	var failed []string
	for _, c := range run.GetCases() {
		if !c.GetPassed() {
			failed = append(failed, fmt.Sprintf("%s (%d new, %d absent, %d changed, %d problems)", c.GetName(), len(c.GetNew()), len(c.GetAbsent()), len(c.GetChanged()), len(c.GetProblems())))
		}
	}
	e := evidence.Entry{Kind: evidence.KindControlResult, Control: "regression", Criteria: Criteria, Subject: run.GetId(), Data: json.RawMessage(data)}
	if run.GetPassed() {
		e.Outcome, e.Summary = evidence.OutcomePass, fmt.Sprintf("baseline regression (%s): %d reference cases match their approved outputs", run.GetTrigger(), len(run.GetCases()))
	} else {
		e.Outcome, e.Summary = evidence.OutcomeFail, fmt.Sprintf("baseline regression (%s) failed: %s", run.GetTrigger(), strings.Join(failed, "; "))
	}
	idx, err := r.rec.Append(ctx, e)
	if err != nil {
		r.log.ErrorContext(ctx, "append regression evidence", "error", err.Error())
		return
	}
	run.EvidenceIndex = idx
	if !run.GetPassed() {
		r.log.ErrorContext(ctx, "ALERT: baseline regression failed", "run", run.GetId(), "failed", strings.Join(failed, "; "))
		if _, err := r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindAlert, Control: "regression", Criteria: append(slices.Clone(Criteria), "CC7.2"),
			Subject: run.GetId(), Outcome: evidence.OutcomeFail, Summary: e.Summary, Data: json.RawMessage(fmt.Sprintf(`{"runEvidenceIndex":%d}`, idx))}); err != nil {
			r.log.ErrorContext(ctx, "append regression alert", "error", err.Error())
		}
	}
}

// Schedule runs the cases every interval until ctx ends. The first run is
// one interval after start, so that a short-lived orchestrator (scan) does
// not compete with its own audit.
func (r *Runner) Schedule(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.Run(ctx, TriggerSchedule, nil); err != nil && ctx.Err() == nil {
			r.log.ErrorContext(ctx, "scheduled regression", "error", err.Error())
		}
	}
}

// ModelChanged is the hook for the controls that see every audit's model
// calls: given the answering provider/model@template of an audit, it runs the
// regression when that differs from what the last run saw. It returns
// whether it ran.
func (r *Runner) ModelChanged(ctx context.Context, answering string) (bool, error) {
	r.mu.Lock()
	same := r.seen == answering
	r.mu.Unlock()
	if same {
		return false, nil
	}
	_, err := r.Run(ctx, TriggerModelChange, nil)
	return err == nil, err
}

// Server implements RegressionService.
type Server struct {
	secureauditv1.UnimplementedRegressionServiceServer
	runner *Runner
	log    *slog.Logger
}

// NewServer returns the RegressionService.
func NewServer(r *Runner, log *slog.Logger) *Server { return &Server{runner: r, log: log} }

// RunRegression runs the reference cases now.
func (s *Server) RunRegression(ctx context.Context, req *secureauditv1.RunRegressionRequest) (*secureauditv1.RunRegressionResponse, error) {
	run, err := s.runner.Run(ctx, TriggerManual, req.GetCases())
	if errors.Is(err, ErrNoCase) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		s.log.ErrorContext(ctx, "run regression", "error", err.Error())
		return nil, status.Error(codes.Internal, "internal")
	}
	return &secureauditv1.RunRegressionResponse{Run: run}, nil
}
