// Package schedule runs audits of registered clusters on cron schedules. It
// never starts an audit of a cluster while another audit of that cluster is
// pending or running (the run is skipped and says so), and after each run it
// deletes the cluster's finished audits older than the schedule's retention.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Errors the API turns into gRPC codes.
var (
	// ErrInvalid: the cron expression does not parse.
	ErrInvalid = errors.New("invalid schedule")
	// ErrExists: a schedule of that name exists.
	ErrExists = errors.New("schedule exists")
)

// Store is what the scheduler needs of storage.
type Store interface {
	SaveSchedule(ctx context.Context, s *secureauditv1.Schedule) error
	ListSchedules(ctx context.Context) ([]*secureauditv1.Schedule, error)
	DeleteSchedule(ctx context.Context, name string) error
	Unfinished(ctx context.Context) ([]*secureauditv1.Audit, error)
	PruneAudits(ctx context.Context, cluster string, before time.Time) (int, error)
	// ClaimScheduleRun is true for exactly one caller per schedule and due
	// time, across every replica on the database.
	ClaimScheduleRun(ctx context.Context, name string, due time.Time, replica string, now time.Time) (bool, error)
	// TakeOverScheduleRun claims a run another replica claimed before
	// staleBefore and never moved on; true for one caller.
	TakeOverScheduleRun(ctx context.Context, name string, due time.Time, replica string, now, staleBefore time.Time) (prev string, prevAt time.Time, ok bool, err error)
	// AuditCreatedSince reports whether an audit of the cluster was created
	// at or after t.
	AuditCreatedSince(ctx context.Context, cluster string, t time.Time) (bool, error)
}

// StaleClaim is how long a replica's claim of a schedule's run may stand
// without the schedule moving on before another replica takes the run
// over: a claim and the save of the next run are milliseconds apart, so a
// claim this old belongs to a replica that died in between.
const StaleClaim = time.Minute

// StartFunc starts an audit of a cluster.
type StartFunc func(ctx context.Context, cluster string, skipDirectory bool) (*secureauditv1.Audit, error)

// Log attribute keys.
const (
	keySchedule = "schedule"
	keyCluster  = "cluster"
	keyError    = "error"
)

// Scheduler keeps schedules and starts their audits when due.
type Scheduler struct {
	store  Store
	start  StartFunc
	log    *slog.Logger
	now    func() time.Time
	parser cron.Parser
	mu     sync.Mutex // serializes ticks and changes

	replica string
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithReplica names this orchestrator replica in the claims of schedule
// runs (default "orchestrator").
func WithReplica(name string) Option { return func(s *Scheduler) { s.replica = name } }

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option { return func(s *Scheduler) { s.now = now } }

// New returns a scheduler; Run starts its loop. Several replicas may run one
// on the same database: each due run is claimed in the database, and only
// the replica that claims it starts the audit and moves the schedule on.
func New(st Store, start StartFunc, log *slog.Logger, opts ...Option) *Scheduler {
	s := &Scheduler{
		store:   st,
		start:   start,
		log:     log,
		now:     time.Now,
		parser:  cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor),
		replica: "orchestrator",
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// next returns the schedule's next run after t, in UTC.
func (s *Scheduler) next(spec string, t time.Time) (time.Time, error) {
	sched, err := s.parser.Parse(spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: cron %q: %v (use five fields, minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @every 6h)", ErrInvalid, spec, err)
	}
	return sched.Next(t.UTC()), nil
}

// Create registers a schedule and returns it with its next run.
func (s *Scheduler) Create(ctx context.Context, in *secureauditv1.Schedule) (*secureauditv1.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	next, err := s.next(in.GetCron(), now)
	if err != nil {
		return nil, err
	}
	all, err := s.store.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if e.GetName() == in.GetName() {
			return nil, fmt.Errorf("%w: %s (remove it first)", ErrExists, in.GetName())
		}
	}
	sc := &secureauditv1.Schedule{
		Name: in.GetName(), Cluster: in.GetCluster(), Cron: in.GetCron(), RetentionDays: in.GetRetentionDays(),
		SkipDirectory: in.GetSkipDirectory(), CreatedAt: timestamppb.New(now.UTC().Truncate(time.Second)), NextRun: timestamppb.New(next),
	}
	if err := s.store.SaveSchedule(ctx, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// List returns the schedules by name.
func (s *Scheduler) List(ctx context.Context) ([]*secureauditv1.Schedule, error) {
	return s.store.ListSchedules(ctx)
}

// Delete removes a schedule.
func (s *Scheduler) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.DeleteSchedule(ctx, name)
}

// Tick starts the audits of the schedules due at the current time and
// returns how many it started.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	all, err := s.store.ListSchedules(ctx)
	if err != nil {
		return 0, err
	}
	running := map[string]bool{}
	unfinished, err := s.store.Unfinished(ctx)
	if err != nil {
		return 0, err
	}
	for _, a := range unfinished {
		running[a.GetCluster()] = true
	}
	started := 0
	for _, sc := range all {
		if sc.GetNextRun().AsTime().After(now) {
			continue
		}
		mine, err := s.store.ClaimScheduleRun(ctx, sc.GetName(), sc.GetNextRun().AsTime(), s.replica, now)
		if err != nil {
			return started, err
		}
		takenOver := ""
		startedBefore := false
		if !mine {
			// Another replica fired this run and moves the schedule on;
			// unless it claimed the run long ago and never did (it died
			// in between): then one replica takes the run over, and starts
			// the audit only if the dead one had not.
			prev, prevAt, ok, err := s.store.TakeOverScheduleRun(ctx, sc.GetName(), sc.GetNextRun().AsTime(), s.replica, now, now.Add(-StaleClaim))
			if err != nil {
				return started, err
			}
			if !ok {
				continue
			}
			if startedBefore, err = s.store.AuditCreatedSince(ctx, sc.GetCluster(), prevAt); err != nil {
				return started, err
			}
			takenOver = fmt.Sprintf("; taken over from replica %s, which claimed this run at %s and did not move the schedule on", prev, prevAt.Format(time.RFC3339))
			s.log.WarnContext(ctx, "schedule run taken over", keySchedule, sc.GetName(), "from", prev)
		}
		sc = proto.Clone(sc).(*secureauditv1.Schedule)
		sc.LastRun = timestamppb.New(now.Truncate(time.Second))
		switch {
		case startedBefore:
			sc.LastMessage = "an audit of " + sc.GetCluster() + " was started after this run was claimed; none started again"
		case running[sc.GetCluster()]:
			sc.LastMessage = "skipped: an audit of " + sc.GetCluster() + " was still pending or running"
			s.log.WarnContext(ctx, "scheduled audit skipped", keySchedule, sc.GetName(), keyCluster, sc.GetCluster())
		default:
			a, err := s.start(ctx, sc.GetCluster(), sc.GetSkipDirectory())
			if err != nil {
				sc.LastMessage = truncate("failed to start: "+err.Error(), 1024)
				s.log.ErrorContext(ctx, "scheduled audit failed to start", keySchedule, sc.GetName(), keyError, err.Error())
				break
			}
			started++
			running[sc.GetCluster()] = true
			sc.LastAuditId = a.GetId()
			sc.LastMessage = "started audit " + a.GetId()
		}
		if days := sc.GetRetentionDays(); days > 0 {
			n, err := s.store.PruneAudits(ctx, sc.GetCluster(), now.Add(-time.Duration(days)*24*time.Hour))
			if err != nil {
				s.log.ErrorContext(ctx, "prune audits", keySchedule, sc.GetName(), keyError, err.Error())
			} else if n > 0 {
				sc.LastMessage += fmt.Sprintf("; deleted %d audits older than %d days", n, days)
			}
		}
		sc.LastMessage = truncate(sc.GetLastMessage()+takenOver, 1024)
		next, err := s.next(sc.GetCron(), now)
		if err != nil {
			return started, err
		}
		sc.NextRun = timestamppb.New(next)
		if err := s.store.SaveSchedule(ctx, sc); err != nil {
			return started, err
		}
	}
	return started, nil
}

// Run ticks every interval until the context ends.
func (s *Scheduler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "scheduler tick", keyError, err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
