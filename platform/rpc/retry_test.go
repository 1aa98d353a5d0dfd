package rpc_test

import (
	"context"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
)

// flaky answers Unavailable to its first failures calls of each method.
type flaky struct {
	secureauditv1.UnimplementedAuditServiceServer
	failures     int64
	lists, start atomic.Int64
}

func (f *flaky) ListAudits(context.Context, *secureauditv1.ListAuditsRequest) (*secureauditv1.ListAuditsResponse, error) {
	if f.lists.Add(1) <= f.failures {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return &secureauditv1.ListAuditsResponse{}, nil
}

func (f *flaky) StartAudit(context.Context, *secureauditv1.StartAuditRequest) (*secureauditv1.StartAuditResponse, error) {
	f.start.Add(1)
	return nil, status.Error(codes.Unavailable, "restarting")
}

// TestUnaryRetriesOnUnavailable: a read that fails Unavailable is tried
// again until it succeeds; StartAudit, which may have been carried out, is
// not; a read failing more often than the attempts gives up with the error.
func TestUnaryRetriesOnUnavailable(t *testing.T) {
	cases := []struct {
		name      string
		failures  int64
		wantCode  codes.Code
		wantCalls int64
	}{
		{"recovers", 3, codes.OK, 4},
		{"gives up", 100, codes.Unavailable, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rpctest.NewPKI(t)
			srv := &flaky{failures: tc.failures}
			addr := p.Serve(t, identity.Orchestrator, []byte(orchestratorManifest), func(s *grpc.Server) { secureauditv1.RegisterAuditServiceServer(s, srv) })
			client := secureauditv1.NewAuditServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
			_, err := client.ListAudits(context.Background(), &secureauditv1.ListAuditsRequest{})
			if status.Code(err) != tc.wantCode {
				t.Errorf("ListAudits: %v, want %s", err, tc.wantCode)
			}
			if got := srv.lists.Load(); got != tc.wantCalls {
				t.Errorf("ListAudits reached the server %d times, want %d", got, tc.wantCalls)
			}
			if _, err := client.StartAudit(context.Background(), &secureauditv1.StartAuditRequest{}); status.Code(err) != codes.Unavailable {
				t.Errorf("StartAudit: %v, want Unavailable", err)
			}
			if got := srv.start.Load(); got != 1 {
				t.Errorf("StartAudit reached the server %d times, want once", got)
			}
		})
	}
}
