package controls

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Server implements secureauditv1.ControlsServiceServer.
type Server struct {
	secureauditv1.UnimplementedControlsServiceServer
	monitor *Monitor
	log     *slog.Logger
}

// NewServer returns a ControlsService server over monitor.
func NewServer(monitor *Monitor, log *slog.Logger) *Server {
	return &Server{monitor: monitor, log: log}
}

func (s *Server) internal(ctx context.Context, what string, err error) error {
	s.log.ErrorContext(ctx, what, keyError, err.Error())
	return status.Error(codes.Internal, "internal")
}

// GetTokenControls implements ControlsService.GetTokenControls.
func (s *Server) GetTokenControls(ctx context.Context, req *secureauditv1.GetTokenControlsRequest) (*secureauditv1.GetTokenControlsResponse, error) {
	limit := int(req.GetAlertLimit())
	if limit == 0 {
		limit = 50
	}
	baselines, err := s.monitor.Baselines(ctx)
	if err != nil {
		return nil, s.internal(ctx, "token baselines", err)
	}
	alerts, err := s.monitor.store.TokenAlerts(ctx, limit)
	if err != nil {
		return nil, s.internal(ctx, "token alerts", err)
	}
	resp := &secureauditv1.GetTokenControlsResponse{Baselines: baselines, Alerts: alerts}
	if id := req.GetAuditId(); id != "" {
		if resp.Calls, err = s.monitor.store.ModelCalls(ctx, id); err != nil {
			return nil, s.internal(ctx, "model calls", err)
		}
	}
	return resp, nil
}

// ListAnomalies implements ControlsService.ListAnomalies.
func (s *Server) ListAnomalies(ctx context.Context, req *secureauditv1.ListAnomaliesRequest) (*secureauditv1.ListAnomaliesResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 50
	}
	list, err := s.monitor.store.Anomalies(ctx, req.GetAuditId(), limit)
	if err != nil {
		return nil, s.internal(ctx, "anomalies", err)
	}
	return &secureauditv1.ListAnomaliesResponse{Anomalies: list}, nil
}
