package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/acceptance"
	"secureaudit.dev/services/orchestrator/store"
)

// Store is what the runner and the service need of storage.
type Store interface {
	CreateAudit(ctx context.Context, a *secureauditv1.Audit, events ...*secureauditv1.AuditEvent) error
	UpdateAudit(ctx context.Context, a *secureauditv1.Audit) error
	GetAudit(ctx context.Context, id string) (*secureauditv1.Audit, error)
	ListAudits(ctx context.Context, limit int, pageToken string) ([]*secureauditv1.Audit, string, error)
	ListClusterAudits(ctx context.Context, cluster string, limit int, pageToken string) ([]*secureauditv1.Audit, string, error)
	Unfinished(ctx context.Context) ([]*secureauditv1.Audit, error)
	SaveResult(ctx context.Context, auditID string, findings []*secureauditv1.Finding, input *secureauditv1.Report, reports map[secureauditv1.ReportFormat][]byte) error
	SaveReviewState(ctx context.Context, auditID string, state *secureauditv1.ReviewState) error
	Findings(ctx context.Context, auditID string) ([]*secureauditv1.Finding, error)
	StoredFindings(ctx context.Context, auditID string) (ids []string, data [][]byte, err error)
	ReadReport(ctx context.Context, auditID string, format secureauditv1.ReportFormat, fn func([]byte) error) error
	ReportInput(ctx context.Context, auditID string) (*secureauditv1.Report, error)
	SaveReportChunk(ctx context.Context, auditID string, format secureauditv1.ReportFormat, seq int, data []byte) error
	FinishReport(ctx context.Context, auditID string, format secureauditv1.ReportFormat, chunks int) error
	AppendEvent(ctx context.Context, e *secureauditv1.AuditEvent) error
	Events(ctx context.Context, auditID string, after uint32) ([]*secureauditv1.AuditEvent, error)
	Leases
}

// Leases is how replicas share the audit queue in the database (package
// store): a pending audit is claimed by one replica, held while that replica
// renews its lease, and failed by another replica once the lease expired.
type Leases interface {
	ClaimAudit(ctx context.Context, owner string, now time.Time, lease time.Duration) (*secureauditv1.Audit, error)
	ClaimAuditID(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (*secureauditv1.Audit, error)
	ClaimExpired(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]store.Expired, error)
	RenewLease(ctx context.Context, id, owner string, until time.Time) (held, cancel bool, err error)
	RequestCancel(ctx context.Context, id string) (bool, error)
	Pending(ctx context.Context) (int, error)
}

// Lease defaults: a replica renews its audits' leases every third of
// DefaultLease, so an audit is failed by another replica between one and
// one and a third leases after its replica died; idle workers look for
// audits queued on other replicas every DefaultPoll.
const (
	DefaultLease = 30 * time.Second
	DefaultPoll  = 2 * time.Second
)

// maxReportedLookupErrors bounds the failed directory lookups a report
// lists (the contract's bound).
const maxReportedLookupErrors = 1000

// reportedLookupErrors returns the failed lookups a report lists: all of
// them, or as many as fit with a last entry counting the rest.
func reportedLookupErrors(errs []*secureauditv1.LookupError) []*secureauditv1.LookupError {
	if len(errs) <= maxReportedLookupErrors {
		return errs
	}
	kept := errs[: maxReportedLookupErrors-1 : maxReportedLookupErrors-1]
	return append(kept, &secureauditv1.LookupError{
		Lookup:  "more lookups",
		Message: fmt.Sprintf("%d more directory lookups failed; the audit's events name the first ten", len(errs)-len(kept)),
	})
}

// Log attribute keys.
const (
	keyAuditID = "audit_id"
	keyStage   = "stage"
	keyError   = "error"
)

// Budgets bound how long each stage may wait for its agent. A stage that
// runs out of time fails the audit with a message naming the agent and the
// stage, and the queue moves on to the next audit.
type Budgets struct {
	Collect, Resolve, Assess, Render time.Duration
}

// DefaultBudgets are minutes where the measured work takes seconds (a
// 10,000-object scan end to end in 5 s with every format, the rule engine on
// 100,000 objects in under a second; README "Speed and memory"), so that a
// large cluster on a loaded node stays well inside them while a stalled
// agent is given up on.
var DefaultBudgets = Budgets{
	Collect: 5 * time.Minute,
	Resolve: 10 * time.Minute,
	Assess:  10 * time.Minute,
	Render:  10 * time.Minute,
}

// stageCall bounds one stage's call to an agent by budget, and turns its
// running out of time into an error naming the agent, the stage and the
// flag that sets the budget.
// Each call is a span of the audit's trace, named after the stage.
func stageCall[T any](ctx context.Context, budget time.Duration, agent, stage, flag string, call func(context.Context) (T, error)) (T, error) {
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, stage)
	defer span.End()
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	v, err := call(sctx)
	// gRPC enforces the same deadline with a timer of its own, which can
	// fire a moment before the context's: past the deadline, the budget
	// ran out either way.
	dl, _ := sctx.Deadline()
	out := errors.Is(sctx.Err(), context.DeadlineExceeded) || !time.Now().Before(dl)
	if err != nil && ctx.Err() == nil && out {
		return v, status.Errorf(grpccodes.DeadlineExceeded, "%s: %s: no answer within the stage's budget of %s (orchestrator %s)", agent, stage, budget, flag)
	}
	return v, err
}

// tracerName names the spans of an audit's stages.
const tracerName = "secureaudit.dev/services/orchestrator/audit"

// Runner runs queued audits, one per worker, and publishes their progress.
// The queue is the database: workers claim pending audits there (whichever
// replica queued them) and hold them with a lease they renew.
type Runner struct {
	budgets Budgets
	agents  Agents
	store   Store
	log     *slog.Logger
	tracer  trace.Tracer
	now     func() time.Time

	replica     string
	lease, poll time.Duration
	wake        chan struct{}

	mu       sync.Mutex
	cancels  map[string]context.CancelFunc
	seq      map[string]uint32
	watchers map[string]chan struct{}
	audits   map[string]*secureauditv1.Audit
	observer Observer
	evidence Recorder
	gates    []Gate
	accepts  Acceptor
	clusters Clusters
	dial     DialFunc
	scopes   AgentScopes
	reviews  Reviewer
	// entraAddr is the default entra-agent's address, tenants the
	// entra-agents configured per Entra tenant (TenantsWith).
	entraAddr string
	// entraConn is the default entra-agent's connection (EntraConnWith).
	entraConn grpc.ClientConnInterface
	tenants   map[string]TenantAgent
}

// Acceptor sorts an audit's main findings by the risk acceptances of its
// cluster (acceptance.Registry).
type Acceptor interface {
	Apply(ctx context.Context, cluster string, main []*secureauditv1.Finding) (*acceptance.Applied, error)
}

// AcceptWith makes audits keep findings an approved acceptance covers out
// of the main list (report.accepted_risks), and flag those whose
// acceptance expired or whose grant changed (report.returned_risks).
func (r *Runner) AcceptWith(a Acceptor) { r.accepts = a }

// NewRunner returns a runner; Run starts its workers.
func NewRunner(agents Agents, store Store, log *slog.Logger, tracer trace.Tracer) *Runner {
	return &Runner{
		budgets:  DefaultBudgets,
		agents:   agents,
		store:    store,
		log:      log,
		tracer:   tracer,
		now:      time.Now,
		replica:  "orchestrator",
		lease:    DefaultLease,
		poll:     DefaultPoll,
		wake:     make(chan struct{}, 1),
		cancels:  map[string]context.CancelFunc{},
		seq:      map[string]uint32{},
		watchers: map[string]chan struct{}{},
		audits:   map[string]*secureauditv1.Audit{},
	}
}

// SetBudgets sets the stage budgets; a zero one keeps its default.
func (r *Runner) SetBudgets(b Budgets) {
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{
		{&r.budgets.Collect, b.Collect}, {&r.budgets.Resolve, b.Resolve}, {&r.budgets.Assess, b.Assess}, {&r.budgets.Render, b.Render},
	} {
		if p.v > 0 {
			*p.dst = p.v
		}
	}
}

// SetReplica names this replica in the leases it takes (default
// "orchestrator"; main uses host, process and a random suffix).
func (r *Runner) SetReplica(name string) { r.replica = name }

// SetLease sets the lease an audit is held with and how often idle workers
// look for audits queued elsewhere (DefaultLease, DefaultPoll).
func (r *Runner) SetLease(lease, poll time.Duration) {
	if lease > 0 {
		r.lease = lease
	}
	if poll > 0 {
		r.poll = poll
	}
}

// maxQueued bounds the audits waiting for a worker, across replicas.
const maxQueued = 1024

// Recover marks audits that a previous process left unfinished as failed,
// so that none stays pending forever. Only for a database no other replica
// uses (SQLite): with several replicas, an audit is failed only when its
// holder's lease expired (Run's reaper), never at another's start-up.
func (r *Runner) Recover(ctx context.Context) error {
	left, err := r.store.Unfinished(ctx)
	if err != nil {
		return err
	}
	for _, a := range left {
		if err := r.adopt(ctx, a); err != nil {
			return err
		}
		r.finish(ctx, a, secureauditv1.AuditState_AUDIT_STATE_FAILED, "the orchestrator stopped while this audit was unfinished; start a new audit")
	}
	return nil
}

// adopt makes a stored audit this runner's to update: its events continue
// from the stored ones.
func (r *Runner) adopt(ctx context.Context, a *secureauditv1.Audit) error {
	events, err := r.store.Events(ctx, a.GetId(), 0)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.seq[a.GetId()] = uint32(len(events))
	r.audits[a.GetId()] = a
	r.mu.Unlock()
	return nil
}

// Run runs workers until ctx ends; running audits are cancelled then. Each
// worker claims the oldest pending audit in the database; a reaper fails
// the running audits whose replica stopped renewing their lease.
func (r *Runner) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				a, err := r.store.ClaimAudit(ctx, r.replica, r.now(), r.lease)
				if err != nil && ctx.Err() == nil {
					r.log.ErrorContext(ctx, "claim an audit", keyError, err.Error())
				}
				if a != nil {
					r.runClaimed(ctx, a)
					continue
				}
				select {
				case <-ctx.Done():
					return
				case <-r.wake:
				case <-time.After(r.poll):
				}
			}
		})
	}
	wg.Go(func() {
		t := time.NewTicker(r.lease / 3)
		defer t.Stop()
		for {
			r.reap(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Wait()
}

// reap fails the running audits whose replica's lease expired.
func (r *Runner) reap(ctx context.Context) {
	expired, err := r.store.ClaimExpired(ctx, r.replica, r.now(), r.lease)
	if err != nil {
		if ctx.Err() == nil {
			r.log.ErrorContext(ctx, "claim expired audits", keyError, err.Error())
		}
		return
	}
	for _, e := range expired {
		if err := r.adopt(ctx, e.Audit); err != nil {
			r.log.ErrorContext(ctx, "fail an expired audit", keyAuditID, e.Audit.GetId(), keyError, err.Error())
			continue
		}
		r.log.WarnContext(ctx, "audit failed: its replica stopped renewing the lease", keyAuditID, e.Audit.GetId(), "holder", e.Holder)
		r.finish(ctx, e.Audit, secureauditv1.AuditState_AUDIT_STATE_FAILED, fmt.Sprintf(
			"the orchestrator replica %s running this audit stopped renewing its lease (expired %s): it stopped or lost the database; start a new audit",
			e.Holder, e.Expired.Format(time.RFC3339)))
	}
}

// Enqueue stores a new pending audit for a worker of any replica to claim.
func (r *Runner) Enqueue(ctx context.Context, a *secureauditv1.Audit) error {
	if n, err := r.store.Pending(ctx); err != nil {
		return err
	} else if n >= maxQueued {
		return errQueueFull
	}
	// The audit and its first event in one transaction: a worker of any
	// replica may claim it at once and continues from the stored events.
	queued := &secureauditv1.AuditEvent{AuditId: a.GetId(), Sequence: 1, Time: timestamppb.New(r.now()),
		State: a.GetState(), Stage: a.GetStage(), Message: "audit queued"}
	if err := r.store.CreateAudit(ctx, a, queued); err != nil {
		return err
	}
	r.mu.Lock()
	if ch, ok := r.watchers[a.GetId()]; ok {
		close(ch)
		delete(r.watchers, a.GetId())
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

var errQueueFull = errors.New("audit queue is full")

// Cancel cancels a pending or running audit. It reports false when the audit
// had already finished. An audit held by another replica is cancelled by
// that replica when it next renews its lease.
func (r *Runner) Cancel(ctx context.Context, id string) (bool, error) {
	r.mu.Lock()
	cancel := r.cancels[id]
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		return true, nil
	}
	a, err := r.store.ClaimAuditID(ctx, id, r.replica, r.now(), r.lease)
	if err != nil {
		return false, err
	}
	if a != nil {
		if err := r.adopt(ctx, a); err != nil {
			return false, err
		}
		r.finish(ctx, a, secureauditv1.AuditState_AUDIT_STATE_CANCELLED, "cancelled before it started")
		return true, nil
	}
	return r.store.RequestCancel(ctx, id)
}

// runClaimed runs an audit this replica claimed, renewing its lease until it
// ends. When the lease is lost (another replica failed the audit after it
// expired) the run stops without writing the audit again.
func (r *Runner) runClaimed(parent context.Context, a *secureauditv1.Audit) {
	id := a.GetId()
	if err := r.adopt(parent, a); err != nil {
		r.log.ErrorContext(parent, "start a claimed audit", keyAuditID, id, keyError, err.Error())
		return
	}
	ctx, cancel := context.WithCancel(parent)
	r.mu.Lock()
	r.cancels[id] = cancel
	r.mu.Unlock()
	var lost atomic.Bool
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(r.lease / 3)
		defer t.Stop()
		last := r.now()
		for {
			held, cancelAsked, err := r.store.RenewLease(ctx, id, r.replica, r.now().Add(r.lease))
			switch {
			case err != nil && ctx.Err() == nil:
				r.log.WarnContext(ctx, "renew an audit's lease", keyAuditID, id, keyError, err.Error())
				if r.now().Sub(last) >= r.lease {
					lost.Store(true)
					cancel()
				}
			case err == nil && !held:
				lost.Store(true)
				cancel()
			case err == nil:
				last = r.now()
				if cancelAsked {
					cancel()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	r.runOne(parent, ctx, a, &lost)
	cancel()
	<-renewed
	r.mu.Lock()
	delete(r.cancels, id)
	r.mu.Unlock()
}

func (r *Runner) runOne(parent, ctx context.Context, a *secureauditv1.Audit, lost *atomic.Bool) {
	id := a.GetId()
	ctx, span := r.tracer.Start(ctx, "audit", trace.WithAttributes(attribute.String("secureaudit.audit_id", id)))
	defer span.End()
	log := r.log.With(keyAuditID, id)
	log.InfoContext(ctx, "audit started")

	err := r.pipeline(ctx, a, log)
	switch {
	case lost.Load():
		// Another replica failed it after the lease expired; its state is
		// that replica's to write.
		log.WarnContext(ctx, "audit abandoned: this replica lost its lease")
		r.mu.Lock()
		delete(r.audits, id)
		delete(r.seq, id)
		r.mu.Unlock()
	case err == nil:
		log.InfoContext(ctx, "audit succeeded")
	case ctx.Err() != nil && parent.Err() == nil:
		r.finish(context.WithoutCancel(ctx), a, secureauditv1.AuditState_AUDIT_STATE_CANCELLED, "cancelled")
		log.InfoContext(ctx, "audit cancelled")
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		log.ErrorContext(ctx, "audit failed", keyError, err.Error())
		r.finish(context.WithoutCancel(ctx), a, secureauditv1.AuditState_AUDIT_STATE_FAILED, err.Error())
	}
}

// pipeline runs the stages of one audit.
func (r *Runner) pipeline(ctx context.Context, a *secureauditv1.Audit, log *slog.Logger) error {
	id := a.GetId()
	if err := r.admit(ctx); err != nil {
		return err
	}
	rbac, reg, release, err := r.rbacAgent(ctx, a.GetCluster())
	if err != nil {
		return err
	}
	// The entra-agent is chosen before collecting: a cluster whose tenant
	// no agent serves fails before any agent is asked.
	var entra *entraChoice
	if !a.GetSkipDirectory() {
		if entra, err = r.entraAgent(ctx, reg); err != nil {
			release()
			return err
		}
	}
	collectMsg := "collecting the RBAC snapshot from the rbac-agent"
	if reg != nil {
		collectMsg = fmt.Sprintf("collecting the RBAC snapshot from cluster %s's rbac-agent at %s (%s)", reg.GetName(), reg.GetAgentAddress(), reg.GetAgentSpiffeId())
	}
	r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_COLLECT, collectMsg)
	snap, err := stageCall(ctx, r.budgets.Collect, "rbac-agent", "collect", "-collect-timeout", func(ctx context.Context) (*snapshot, error) {
		return collect(ctx, rbac, id)
	})
	release()
	if err != nil {
		return err
	}
	cluster := snap.header.GetCluster()
	if err := checkServed(a.GetCluster(), cluster, reg); err != nil {
		return err
	}
	r.update(ctx, a, func(a *secureauditv1.Audit) { a.Cluster = cluster })
	c := snap.trailer.GetCounts()
	r.event(ctx, a, fmt.Sprintf("collected %d roles, %d cluster roles, %d role bindings, %d cluster role bindings, %d service accounts, %d workloads from %s",
		c.GetRoles(), c.GetClusterRoles(), c.GetRoleBindings(), c.GetClusterRoleBindings(), c.GetServiceAccounts(), c.GetWorkloads(), cluster))

	var dir *directory
	switch {
	case entra == nil && (!a.GetSkipDirectory() || r.agents.Entra == nil && len(r.tenants) == 0):
		r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_RESOLVE, noEntraAgent(reg, len(r.tenants) > 0))
	case a.GetSkipDirectory():
		r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_RESOLVE, "identity resolution skipped on request")
	default:
		principals := snap.principals()
		msg := fmt.Sprintf("resolving %d principals in Entra ID", len(principals))
		if entra.tenant != "" {
			msg += fmt.Sprintf(" (tenant %s) through %s", entra.tenant, entra.where)
		}
		r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_RESOLVE, msg)
		if len(principals) > 0 {
			dir, err = stageCall(ctx, r.budgets.Resolve, "entra-agent", "resolve", "-resolve-timeout", func(ctx context.Context) (*directory, error) {
				return resolve(ctx, entra.client, id, entra.aks, principals)
			})
			if err == nil {
				err = entra.check(dir)
				if err == nil {
					err = r.recheck(ctx, entra)
				}
				if err != nil {
					return err
				}
			}
			if err != nil {
				if !unavailable(err) || ctx.Err() != nil {
					return err
				}
				log.WarnContext(ctx, "directory unavailable", keyError, err.Error())
				r.event(ctx, a, "identity data unavailable, auditing without it: "+err.Error())
				dir = nil
			} else {
				r.event(ctx, a, fmt.Sprintf("resolved principals; %d not found in the directory", dir.unresolved))
				for _, w := range dir.warnings() {
					r.event(ctx, a, w)
				}
			}
		} else {
			dir = &directory{}
		}
	}
	r.update(ctx, a, func(a *secureauditv1.Audit) { a.DirectoryAvailable = dir != nil })

	r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_ASSESS, "assessing with the risk-agent")
	formats := a.GetFormats()
	if len(formats) == 0 {
		formats = Formats
	}
	// The report-agent receives the findings as the risk-agent streams
	// them (the relay), and the report once they are assessed and the
	// orchestrator has compared, accepted and reviewed them: at 100,000
	// objects sending 68,000 findings took 1.8 s of the render stage.
	var rl *findingRelay
	var relayTo func([]*secureauditv1.Finding)
	if r.agents.Report != nil {
		rl = startFindingRelay(ctx, r.agents.Report, formats, r.reviews != nil)
		defer rl.stop()
		relayTo = rl.add
	}
	// Read while the agent assesses, when the audit writes nothing to the
	// store (its one connection is shared).
	baseline := r.baseline(ctx, a)
	result, err := stageCall(ctx, r.budgets.Assess, "risk-agent", "assess", "-assess-timeout", func(ctx context.Context) (*assessment, error) {
		return assess(ctx, r.agents.Risk, id, snap, dir, relayTo)
	})
	if err != nil {
		return err
	}
	// Only the header and trailer are read from here on: the objects are
	// freed before the findings are rendered (at 100,000 objects they are
	// tens of MiB the render stage would otherwise hold).
	snap.chunks = nil
	snap.forwarded.Clear()
	r.observe(ctx, a, result.summary, log)
	var main, infra []*secureauditv1.Finding
	for _, f := range result.findings {
		if f.GetInfrastructure() {
			infra = append(infra, f)
		} else {
			main = append(main, f)
		}
	}
	// History compares every main finding, accepted or not: an accepted
	// finding is not resolved. The report withholds the accepted ones from
	// its findings (the report-agent received them all).
	assessed := main
	var withheld []string
	var applied *acceptance.Applied
	if r.accepts != nil {
		if applied, err = r.accepts.Apply(ctx, cluster, main); err != nil {
			return fmt.Errorf("risk acceptances: %w", err)
		}
		main = applied.Main
		for _, af := range applied.Accepted {
			withheld = append(withheld, af.GetFinding().GetId())
		}
		if len(applied.Accepted)+len(applied.Returned) > 0 {
			r.event(ctx, a, fmt.Sprintf("%d findings accepted as risks, %d back from an expired acceptance or a changed grant", len(applied.Accepted), len(applied.Returned)))
		}
	}
	summary := countSeverities(main)
	r.event(ctx, a, fmt.Sprintf("%d findings (%d critical, %d high, %d medium, %d low, %d info) and %d on platform-managed identities",
		len(main), summary.GetCritical(), summary.GetHigh(), summary.GetMedium(), summary.GetLow(), summary.GetInfo(), len(infra)))

	r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_RENDER, "rendering the report with the report-agent")
	report := &secureauditv1.Report{
		AuditId:            id,
		Cluster:            cluster,
		GeneratedAt:        a.GetCreatedAt(),
		Source:             snap.header.GetSource(),
		Origin:             snap.header.GetOrigin(),
		Counts:             snap.trailer.GetCounts(),
		Skipped:            snap.trailer.GetSkipped(),
		DirectoryAvailable: dir != nil,
		CatalogueVersion:   result.summary.GetCatalogueVersion(),
		ReasoningProvider:  result.summary.GetReasoningProvider(),
		Semantics:          result.summary.GetSemantics(),
		Reasoning:          result.reasoning,
		Summary:            summary,
		// Objects too large to audit were left out of the snapshot (each
		// is also an RBAC-050 finding): the report says it is incomplete.
		SnapshotPartial:  snap.trailer.GetUnauditedCount() > 0 || len(snap.trailer.GetUnaudited()) > 0,
		UnauditedObjects: snap.trailer.GetUnaudited(),
		UnauditedCount:   max(snap.trailer.GetUnauditedCount(), uint32(len(snap.trailer.GetUnaudited()))),
		ChokePoints:      result.summary.GetChokePoints(),
		// The controls the risk-agent's rule registry maps rules to, with
		// their titles: the report states a compliance status for each.
		Controls: result.summary.GetControls(),
	}
	if dir != nil {
		report.UnresolvedPrincipals = uint32(dir.unresolved)
		report.DirectoryPartial = dir.partial
		report.DirectoryErrors = reportedLookupErrors(dir.errors)
		report.DirectoryErrorCount = uint32(len(dir.errors))
	}
	if applied != nil {
		report.AcceptedRisks, report.ReturnedRisks = applied.Accepted, applied.Returned
		report.ExpiringWithinDays = uint32(applied.Within / (24 * time.Hour))
	}
	ectx, span := r.tracer.Start(ctx, "enrich")
	r.enrich(ectx, a, report, dir, assessed, result.summary, baseline, log)
	span.End()
	// The findings and the report's input are stored while the report-agent
	// renders (neither changes from here on). Each chunk of each document is
	// stored as it arrives and let go, so that the orchestrator holds no
	// document. Findings and reports stored before a later failure are never
	// served: GetReport, history and late renders read succeeded audits only.
	// Nothing here holds the decoded findings past that: the store holds
	// them until they are stored, the relay until they are sent (at 100,000
	// objects they are some 200 MB the rest of the render stage would
	// otherwise hold).
	//
	// With a review registry, the report-agent first names the findings
	// whose report action is Revoke: the registry checks earlier
	// revocations, tracks those grants and opens the audit's campaign, and
	// the report is rendered with the review state (the report-agent alone
	// decides the actions, so the report's Revoke rows and the tracked
	// revocations are the same). The findings are stored meanwhile with the
	// input as it was sent (a copy: the review state is set on report while
	// they are written), and the review state is stored on its own
	// (SaveReviewState) once both are done: the input is written once.
	input := report
	var actions func(*secureauditv1.RenderActions) (*secureauditv1.ReviewState, error)
	reviewed := false
	if r.reviews != nil {
		r.reviews.Key(report)
		input = proto.Clone(report).(*secureauditv1.Report)
		actions = func(acts *secureauditv1.RenderActions) (*secureauditv1.ReviewState, error) {
			if err := r.review(ctx, a, report, main, acts.GetRevokeFindingIds()); err != nil {
				return nil, err
			}
			reviewed = true
			return report.GetReview(), nil
		}
	}
	relayed := len(result.findings)
	if rl == nil {
		return errors.New("report-agent: not configured")
	}
	done := make(chan error, 1)
	go func(findings []*secureauditv1.Finding) {
		done <- r.store.SaveResult(ctx, id, findings, input, nil)
	}(result.findings)
	saved := sync.OnceValue(func() error { return <-done })
	_, err = stageCall(ctx, r.budgets.Render, "report-agent", "render", "-render-timeout", func(ctx context.Context) (struct{}, error) {
		// The relay's call began before this stage: it ends with the
		// stage's budget.
		context.AfterFunc(ctx, rl.cancel)
		err := rl.end(report, relayed, withheld, formats, actions, storeChunks(ctx, r.store, id))
		var relayErr *relayError
		if !errors.As(err, &relayErr) || ctx.Err() != nil {
			return struct{}{}, err
		}
		// The report-agent's call ended while it received the findings,
		// or could not be opened (it restarted, or predates
		// report_follows): nothing was rendered or tracked. The findings
		// are rendered again from the store, as a late render does, in a
		// call of their own.
		log.WarnContext(ctx, "the report-agent's call ended while the findings were relayed; rendering from the stored findings", keyError, err.Error())
		r.event(ctx, a, "the report-agent's call ended while it received the findings ("+err.Error()+"): rendering from the stored findings")
		if err := saved(); err != nil {
			return struct{}{}, err
		}
		stored, err := r.store.Findings(ctx, id)
		if err != nil {
			return struct{}{}, err
		}
		if applied != nil {
			stored = withoutAccepted(stored, applied.Accepted)
		}
		// The report-agent may be on its way back (restarted): the call
		// waits for it, within the stage's budget.
		return struct{}{}, renderEach(ctx, r.agents.Report, report, stored, nil, formats, actions, storeChunks(ctx, r.store, id), grpc.WaitForReady(true))
	})
	if err != nil {
		saved()
		return err
	}
	if actions != nil && !reviewed {
		saved()
		return errors.New("report-agent: render: the report was rendered without its actions")
	}

	r.stage(ctx, a, secureauditv1.AuditStage_AUDIT_STAGE_STORE, "storing findings")
	_, span = r.tracer.Start(ctx, "store")
	err = saved()
	if err == nil && r.reviews != nil {
		err = r.store.SaveReviewState(ctx, id, report.GetReview())
	}
	span.End()
	if err != nil {
		return err
	}
	r.update(ctx, a, func(a *secureauditv1.Audit) { a.Summary = summary })
	r.finish(ctx, a, secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, "audit complete")
	return nil
}

func countSeverities(findings []*secureauditv1.Finding) *secureauditv1.SeverityCounts {
	c := &secureauditv1.SeverityCounts{}
	for _, f := range findings {
		switch f.GetSeverity() {
		case secureauditv1.Severity_SEVERITY_CRITICAL:
			c.Critical++
		case secureauditv1.Severity_SEVERITY_HIGH:
			c.High++
		case secureauditv1.Severity_SEVERITY_MEDIUM:
			c.Medium++
		case secureauditv1.Severity_SEVERITY_LOW:
			c.Low++
		case secureauditv1.Severity_SEVERITY_INFO:
			c.Info++
		}
	}
	return c
}

func terminal(s secureauditv1.AuditState) bool {
	switch s {
	case secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, secureauditv1.AuditState_AUDIT_STATE_FAILED, secureauditv1.AuditState_AUDIT_STATE_CANCELLED:
		return true
	}
	return false
}

// update changes the audit under the lock and stores it.
func (r *Runner) update(ctx context.Context, a *secureauditv1.Audit, change func(*secureauditv1.Audit)) {
	r.mu.Lock()
	change(a)
	r.mu.Unlock()
	if err := r.store.UpdateAudit(ctx, r.snapshot(a)); err != nil {
		r.log.ErrorContext(ctx, "store audit", keyAuditID, a.GetId(), keyError, err.Error())
	}
}

func (r *Runner) stage(ctx context.Context, a *secureauditv1.Audit, stage secureauditv1.AuditStage, msg string) {
	r.update(ctx, a, func(a *secureauditv1.Audit) {
		a.State = secureauditv1.AuditState_AUDIT_STATE_RUNNING
		a.Stage = stage
	})
	r.event(ctx, a, msg)
}

func (r *Runner) finish(ctx context.Context, a *secureauditv1.Audit, state secureauditv1.AuditState, msg string) {
	r.mu.Lock()
	a.State = state
	if state == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		a.Stage = secureauditv1.AuditStage_AUDIT_STAGE_DONE
	}
	if state == secureauditv1.AuditState_AUDIT_STATE_FAILED {
		a.Error = truncate(msg, 4096)
	}
	a.FinishedAt = timestamppb.New(r.now())
	r.mu.Unlock()
	// The final event is stored before the terminal state, so that a watcher
	// that sees the state has every event to read.
	r.event(ctx, a, msg)
	// The evidence too, so that an export after the terminal state has it.
	r.record(ctx, r.snapshot(a))
	if err := r.store.UpdateAudit(ctx, r.snapshot(a)); err != nil {
		r.log.ErrorContext(ctx, "store audit", keyAuditID, a.GetId(), keyError, err.Error())
	}
	r.mu.Lock()
	delete(r.audits, a.GetId())
	delete(r.seq, a.GetId())
	if ch, ok := r.watchers[a.GetId()]; ok {
		close(ch)
		delete(r.watchers, a.GetId())
	}
	r.mu.Unlock()
}

// event stores a progress event and wakes the audit's watchers.
func (r *Runner) event(ctx context.Context, a *secureauditv1.Audit, msg string) {
	r.mu.Lock()
	r.seq[a.GetId()]++
	e := &secureauditv1.AuditEvent{
		AuditId:  a.GetId(),
		Sequence: r.seq[a.GetId()],
		Time:     timestamppb.New(r.now()),
		State:    a.GetState(),
		Stage:    a.GetStage(),
		Message:  truncate(msg, 4096),
	}
	r.mu.Unlock()
	if err := r.store.AppendEvent(ctx, e); err != nil {
		r.log.ErrorContext(ctx, "store event", keyAuditID, a.GetId(), keyError, err.Error())
	}
	r.mu.Lock()
	if ch, ok := r.watchers[a.GetId()]; ok {
		close(ch)
		delete(r.watchers, a.GetId())
	}
	r.mu.Unlock()
}

// changed returns a channel closed at the audit's next event.
func (r *Runner) changed(id string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, ok := r.watchers[id]
	if !ok {
		ch = make(chan struct{})
		r.watchers[id] = ch
	}
	return ch
}

// snapshot returns a copy of the audit taken under the lock.
func (r *Runner) snapshot(a *secureauditv1.Audit) *secureauditv1.Audit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneAudit(a)
}

// truncate shortens s to at most n runes, keeping it valid UTF-8.
func truncate(s string, n int) string {
	r := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-3]) + "..."
}

// noEntraAgent is the resolve stage's message of an audit that no
// entra-agent serves: of the registered cluster reg (nil: an unregistered
// one, collected from the default rbac-agent), when entra-agents of
// tenants are configured (tenants) or none at all.
func noEntraAgent(reg *secureauditv1.Cluster, tenants bool) string {
	switch {
	case !tenants:
		return "no entra-agent configured: auditing without identity data"
	case reg == nil:
		return "no default entra-agent (-entra-agent) for an audit of an unregistered cluster (only registered clusters with an Entra tenant have an entra-agent of their own): auditing without identity data"
	default:
		return fmt.Sprintf("no default entra-agent (-entra-agent) for cluster %s, registered without an Entra tenant: auditing without identity data", reg.GetName())
	}
}
