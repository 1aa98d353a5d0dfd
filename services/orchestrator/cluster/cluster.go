// Package cluster serves the orchestrator's registry of audited clusters
// (ClusterService): each cluster names the rbac-agent that serves it, by
// address and SPIFFE ID, with its labels, its Entra tenant and AKS resource
// ID and its schedule. Audits dial the registered rbac-agent (package audit);
// this package only keeps the registry.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/services/orchestrator/schedule"
	"secureaudit.dev/services/orchestrator/store"
)

// Store is what the registry needs of storage (package store).
type Store interface {
	CreateCluster(ctx context.Context, c *secureauditv1.Cluster) error
	ReplaceCluster(ctx context.Context, c *secureauditv1.Cluster) error
	GetCluster(ctx context.Context, name string) (*secureauditv1.Cluster, error)
	ListClusters(ctx context.Context) ([]*secureauditv1.Cluster, error)
	DeleteCluster(ctx context.Context, name string) error
	LastAudit(ctx context.Context, cluster string) (*secureauditv1.Audit, error)
}

// Schedules is what the registry needs of the scheduler: a cluster's
// schedule is a schedule named after it.
type Schedules interface {
	Create(ctx context.Context, s *secureauditv1.Schedule) (*secureauditv1.Schedule, error)
	List(ctx context.Context) ([]*secureauditv1.Schedule, error)
	Delete(ctx context.Context, name string) error
}

// Recorder appends to the evidence log (package evidence).
type Recorder interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
}

// WithEvidence records every registration, replacement and deregistration
// in the evidence log (CC8.1: who pointed which cluster's audits at which
// rbac-agent, and when).
func WithEvidence(r Recorder) Option { return func(s *Server) { s.evidence = r } }

// Evidence of the registry: a control result with outcome info.
const (
	evidenceControl = "clusters"
)

var evidenceCriteria = []string{"CC8.1", "CC6.1"}

// record appends what happened to a registration to the evidence log.
func (s *Server) record(ctx context.Context, verb string, c *secureauditv1.Cluster, caller string) error {
	if s.evidence == nil {
		return nil
	}
	data, err := json.Marshal(map[string]any{
		"cluster": c.GetName(), "agent_address": c.GetAgentAddress(), "agent_spiffe_id": c.GetAgentSpiffeId(),
		"entra_tenant_id": c.GetEntraTenantId(), "aks_resource_id": c.GetAksResourceId(), "labels": c.GetLabels(),
		"schedule": c.GetSchedule(), "by": caller,
	})
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("cluster %s %s by %s: rbac-agent at %s (%s)", c.GetName(), verb, caller, c.GetAgentAddress(), c.GetAgentSpiffeId())
	_, err = s.evidence.Append(ctx, evidence.Entry{Kind: evidence.KindControlResult, Control: evidenceControl, Criteria: evidenceCriteria,
		Subject: c.GetName(), Outcome: evidence.OutcomeInfo, Summary: summary, Data: data})
	return err
}

// Server implements ClusterService.
type Server struct {
	secureauditv1.UnimplementedClusterServiceServer
	store     Store
	schedules Schedules
	fleet     Fleet
	evidence  Recorder
	renderer  Renderer
	log       *slog.Logger
	now       func() time.Time
	// overdueAfter is how long past its next run a schedule is overdue.
	overdueAfter time.Duration
	// messageLimit bounds the fleet view and report messages (0:
	// rpc.MaxMessageSize; WithMessageLimit).
	messageLimit int
}

// Option configures a Server.
type Option func(*Server)

// WithSchedules creates and removes the clusters' schedules with sc;
// without it a cluster with a schedule is refused.
func WithSchedules(sc Schedules) Option { return func(s *Server) { s.schedules = sc } }

// WithClock sets the clock registrations are stamped with.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// NewServer returns the ClusterService over st.
func NewServer(st Store, log *slog.Logger, opts ...Option) *Server {
	s := &Server{store: st, log: log, now: time.Now, overdueAfter: DefaultOverdueAfter}
	for _, o := range opts {
		o(s)
	}
	return s
}

// RegisterCluster stores a new cluster, and its schedule when it has one.
func (s *Server) RegisterCluster(ctx context.Context, req *secureauditv1.RegisterClusterRequest) (*secureauditv1.RegisterClusterResponse, error) {
	c := proto.Clone(req.GetCluster()).(*secureauditv1.Cluster)
	// The contract checks the form; the trust domain is this deployment's.
	if _, err := identity.Parse(c.GetAgentSpiffeId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "cluster %s: agent_spiffe_id %q: %v (the rbac-agent's SPIFFE ID must be in the trust domain %s)",
			c.GetName(), c.GetAgentSpiffeId(), err, identity.Domain())
	}
	if c.GetSchedule() == "" && (c.GetRetentionDays() > 0 || c.GetSkipDirectory()) {
		return nil, status.Errorf(codes.InvalidArgument, "cluster %s: retention_days and skip_directory apply to its schedule, and it has none", c.GetName())
	}
	if c.GetSchedule() != "" && s.schedules == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "cluster %s has a schedule, and scheduling is not enabled on this orchestrator (-schedule-tick 0)", c.GetName())
	}
	caller, _ := identity.Caller(ctx)
	c.RegisteredBy = caller.String()
	c.RegisteredAt = timestamppb.New(s.now().UTC().Truncate(time.Second))
	var old *secureauditv1.Cluster
	if req.GetReplace() {
		prev, err := s.store.GetCluster(ctx, c.GetName())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, s.internal(ctx, "register cluster", err)
		}
		old = prev
	}
	var err error
	if req.GetReplace() {
		err = s.store.ReplaceCluster(ctx, c)
	} else {
		err = s.store.CreateCluster(ctx, c)
	}
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, status.Errorf(codes.AlreadyExists, "cluster %s is registered already (secureaudit cluster get %s; --replace to change it)", c.GetName(), c.GetName())
	case err != nil:
		return nil, s.internal(ctx, "register cluster", err)
	}
	// A replaced registration's own schedule goes with it (the new one's,
	// if any, is created below).
	if old.GetSchedule() != "" && s.schedules != nil {
		if err := s.schedules.Delete(ctx, old.GetName()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, s.internal(ctx, "register cluster: replace its schedule", err)
		}
	}
	if c.GetSchedule() != "" {
		_, err := s.schedules.Create(ctx, clusterSchedule(c))
		if err != nil {
			// The registration and its schedule stand or fall together.
			if derr := s.undo(context.WithoutCancel(ctx), c.GetName(), old); derr != nil {
				s.log.ErrorContext(ctx, "undo a cluster registration whose schedule failed", "cluster", c.GetName(), "error", derr.Error())
			}
			switch {
			case errors.Is(err, schedule.ErrInvalid):
				return nil, status.Errorf(codes.InvalidArgument, "cluster %s: schedule: %v", c.GetName(), err)
			case errors.Is(err, schedule.ErrExists):
				return nil, status.Errorf(codes.AlreadyExists, "cluster %s: a schedule named %s exists already (secureaudit schedule list)", c.GetName(), c.GetName())
			}
			return nil, s.internal(ctx, "register cluster", err)
		}
	}
	verb := "registered"
	if old != nil {
		verb = "re-registered"
	}
	if err := s.record(ctx, verb, c, c.GetRegisteredBy()); err != nil {
		// No registration without its evidence.
		if derr := s.undo(context.WithoutCancel(ctx), c.GetName(), old); derr != nil {
			s.log.ErrorContext(ctx, "undo a cluster registration whose evidence failed", "cluster", c.GetName(), "error", derr.Error())
		}
		return nil, s.internal(ctx, "register cluster: record evidence", err)
	}
	s.log.InfoContext(ctx, "cluster registered", "cluster", c.GetName(), "agent_address", c.GetAgentAddress(), "agent_spiffe_id", c.GetAgentSpiffeId(), "registered_by", c.GetRegisteredBy())
	return &secureauditv1.RegisterClusterResponse{Cluster: c}, nil
}

// ListClusters lists the clusters carrying every requested label.
func (s *Server) ListClusters(ctx context.Context, req *secureauditv1.ListClustersRequest) (*secureauditv1.ListClustersResponse, error) {
	all, err := s.store.ListClusters(ctx)
	if err != nil {
		return nil, s.internal(ctx, "list clusters", err)
	}
	out := all[:0]
	for _, c := range all {
		if Matches(c, req.GetLabels()) {
			out = append(out, c)
		}
	}
	return &secureauditv1.ListClustersResponse{Clusters: out}, nil
}

// Matches reports whether c carries every label of want.
func Matches(c *secureauditv1.Cluster, want map[string]string) bool {
	for k, v := range want {
		if got, ok := c.GetLabels()[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// GetCluster returns a cluster with its latest audit.
func (s *Server) GetCluster(ctx context.Context, req *secureauditv1.GetClusterRequest) (*secureauditv1.GetClusterResponse, error) {
	c, err := s.store.GetCluster(ctx, req.GetName())
	if errors.Is(err, store.ErrNotFound) {
		return nil, notRegistered(req.GetName())
	}
	if err != nil {
		return nil, s.internal(ctx, "get cluster", err)
	}
	last, err := s.store.LastAudit(ctx, c.GetName())
	if err != nil {
		return nil, s.internal(ctx, "get cluster", err)
	}
	return &secureauditv1.GetClusterResponse{Cluster: c, LastAudit: last}, nil
}

// DeregisterCluster removes a cluster and every schedule of it; its audits,
// reports and evidence entries stay.
func (s *Server) DeregisterCluster(ctx context.Context, req *secureauditv1.DeregisterClusterRequest) (*secureauditv1.DeregisterClusterResponse, error) {
	name := req.GetName()
	prev, err := s.store.GetCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notRegistered(name)
	}
	if err != nil {
		return nil, s.internal(ctx, "deregister cluster", err)
	}
	err = s.store.DeleteCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notRegistered(name)
	}
	if err != nil {
		return nil, s.internal(ctx, "deregister cluster", err)
	}
	resp := &secureauditv1.DeregisterClusterResponse{}
	if s.schedules != nil {
		all, err := s.schedules.List(ctx)
		if err != nil {
			return nil, s.internal(ctx, "deregister cluster: list its schedules", err)
		}
		for _, sc := range all {
			if sc.GetCluster() != name {
				continue
			}
			if err := s.schedules.Delete(ctx, sc.GetName()); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, s.internal(ctx, "deregister cluster: remove its schedule "+sc.GetName(), err)
			}
			resp.RemovedSchedules = append(resp.RemovedSchedules, sc.GetName())
		}
	}
	caller, _ := identity.Caller(ctx)
	if err := s.record(ctx, "deregistered", prev, caller.String()); err != nil {
		return nil, s.internal(ctx, "deregister cluster: record evidence", err)
	}
	s.log.InfoContext(ctx, "cluster deregistered", "cluster", name, "removed_schedules", resp.GetRemovedSchedules(), "caller", caller.String())
	return resp, nil
}

// undo takes back a registration whose schedule failed: the replaced one
// is stored again with its schedule, a new one removed.
func (s *Server) undo(ctx context.Context, name string, old *secureauditv1.Cluster) error {
	if old == nil {
		return s.store.DeleteCluster(ctx, name)
	}
	if err := s.store.ReplaceCluster(ctx, old); err != nil {
		return err
	}
	if old.GetSchedule() != "" {
		if _, err := s.schedules.Create(ctx, clusterSchedule(old)); err != nil {
			return err
		}
	}
	return nil
}

// clusterSchedule is the schedule named after a cluster.
func clusterSchedule(c *secureauditv1.Cluster) *secureauditv1.Schedule {
	return &secureauditv1.Schedule{Name: c.GetName(), Cluster: c.GetName(), Cron: c.GetSchedule(),
		RetentionDays: c.GetRetentionDays(), SkipDirectory: c.GetSkipDirectory()}
}

func notRegistered(name string) error {
	return status.Errorf(codes.NotFound, "cluster %s is not registered (secureaudit cluster list)", name)
}

// internal logs err once and returns a bare Internal.
func (s *Server) internal(ctx context.Context, op string, err error) error {
	s.log.ErrorContext(ctx, op, "error", err.Error())
	return status.Error(codes.Internal, fmt.Sprintf("%s: internal error", op))
}
