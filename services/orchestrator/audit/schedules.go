package audit

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/history"
	"secureaudit.dev/services/orchestrator/schedule"
	"secureaudit.dev/services/orchestrator/store"
)

// Schedules is what the service needs of the scheduler.
type Schedules interface {
	Create(ctx context.Context, s *secureauditv1.Schedule) (*secureauditv1.Schedule, error)
	List(ctx context.Context) ([]*secureauditv1.Schedule, error)
	Delete(ctx context.Context, name string) error
}

// ScheduleWith serves the schedule RPCs from sc; without it they answer
// FailedPrecondition.
func (s *Service) ScheduleWith(sc Schedules) { s.schedules = sc }

// Start starts an audit on behalf of the scheduler, as StartAudit does for
// a caller.
func (s *Service) Start(ctx context.Context, cluster string, skipDirectory bool) (*secureauditv1.Audit, error) {
	resp, err := s.StartAudit(ctx, &secureauditv1.StartAuditRequest{Cluster: cluster, SkipDirectory: skipDirectory})
	if err != nil {
		return nil, err
	}
	return resp.GetAudit(), nil
}

// GetAuditHistory compares an audit with the previous audit of its cluster.
func (s *Service) GetAuditHistory(ctx context.Context, req *secureauditv1.GetAuditHistoryRequest) (*secureauditv1.GetAuditHistoryResponse, error) {
	a, err := s.get(ctx, req.GetAuditId())
	if err != nil {
		return nil, err
	}
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		return nil, status.Errorf(codes.FailedPrecondition, "audit %s has no findings to compare: it is %s", a.GetId(), a.GetState())
	}
	current, err := s.store.Findings(ctx, a.GetId())
	if err != nil {
		return nil, s.internal(ctx, "get audit history", err)
	}
	h, err := history.Since(ctx, s.store, a, current)
	if err != nil {
		return nil, s.internal(ctx, "get audit history", err)
	}
	return &secureauditv1.GetAuditHistoryResponse{History: h}, nil
}

// CreateSchedule registers a recurring audit.
func (s *Service) CreateSchedule(ctx context.Context, req *secureauditv1.CreateScheduleRequest) (*secureauditv1.CreateScheduleResponse, error) {
	if s.schedules == nil {
		return nil, status.Error(codes.FailedPrecondition, "scheduling is not enabled on this orchestrator")
	}
	sc, err := s.schedules.Create(ctx, req.GetSchedule())
	switch {
	case errors.Is(err, schedule.ErrInvalid):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, schedule.ErrExists):
		return nil, status.Error(codes.AlreadyExists, err.Error())
	case err != nil:
		return nil, s.internal(ctx, "create schedule", err)
	}
	return &secureauditv1.CreateScheduleResponse{Schedule: sc}, nil
}

// ListSchedules lists the schedules.
func (s *Service) ListSchedules(ctx context.Context, _ *secureauditv1.ListSchedulesRequest) (*secureauditv1.ListSchedulesResponse, error) {
	if s.schedules == nil {
		return &secureauditv1.ListSchedulesResponse{}, nil
	}
	all, err := s.schedules.List(ctx)
	if err != nil {
		return nil, s.internal(ctx, "list schedules", err)
	}
	return &secureauditv1.ListSchedulesResponse{Schedules: all}, nil
}

// DeleteSchedule removes a schedule.
func (s *Service) DeleteSchedule(ctx context.Context, req *secureauditv1.DeleteScheduleRequest) (*secureauditv1.DeleteScheduleResponse, error) {
	if s.schedules == nil {
		return nil, status.Error(codes.FailedPrecondition, "scheduling is not enabled on this orchestrator")
	}
	err := s.schedules.Delete(ctx, req.GetName())
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "schedule %s not found (list them with `secureaudit schedule list`)", req.GetName())
	}
	if err != nil {
		return nil, s.internal(ctx, "delete schedule", err)
	}
	return &secureauditv1.DeleteScheduleResponse{}, nil
}
