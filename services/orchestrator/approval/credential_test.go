package approval

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

// serveWithCredential serves the report-agent presenting a credential check.
func serveWithCredential(t *testing.T, p *rpctest.PKI, check string) Agent {
	t.Helper()
	m := parse(t, reportManifest)
	log := rpctest.Logger(t)
	v, err := validation.New(log)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing("test", "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.NewServer(rpc.ServerConfig{Credentials: p.Credentials(t, identity.ReportAgent), Manifest: m, Logger: log, Tracer: tr.Provider, Validator: v,
		CredentialCheck: func() string { return check }}, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, reportServer{}) })
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); <-done })
	return Agent{Workload: identity.ReportAgent, Conn: p.Dial(t, lis.Addr().String(), identity.ReportAgent, identity.Orchestrator)}
}

func TestCredentialCheck(t *testing.T) { backends(t, testCredentialCheck) }

func testCredentialCheck(t *testing.T, backend string) {
	p := rpctest.NewPKI(t)
	violation := `{"outcome":"violation","summary":"VIOLATION: a ServiceAccount token is mounted"}`
	pass := `{"outcome":"pass","summary":"no Kubernetes credential"}`
	tests := []struct {
		name      string
		check     string
		refuse    bool
		wantErr   bool
		wantAlert bool
	}{
		{"pass", pass, true, false, false},
		{"violation, not refused", violation, false, false, true},
		{"violation, refused", violation, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &fakeLog{}
			m := parse(t, reportManifest)
			r := newRegistry(t, backend, rec, map[string]*scope.Manifest{identity.ReportAgent: m})
			r.refuseCredential = tc.refuse
			r.SetAgents([]Agent{serveWithCredential(t, p, tc.check)})
			ctx := context.Background()
			if _, err := r.Approve(ctx, &secureauditv1.ScopeApproval{Workload: identity.ReportAgent, Digest: m.Digest(), Approver: "alice", Ticket: "SEC-1"}); err != nil {
				t.Fatal(err)
			}
			err := r.Admit(ctx)
			var ce *CredentialError
			if errors.As(err, &ce) != tc.wantErr {
				t.Errorf("Admit = %v, want refusal %v", err, tc.wantErr)
			}
			if ce != nil && !strings.Contains(ce.Error(), "token is mounted") {
				t.Errorf("refusal %q does not carry the evidence", ce)
			}
			var alert bool
			for _, k := range rec.kinds() {
				alert = alert || k == "alert:report-agent:fail"
			}
			if alert != tc.wantAlert {
				t.Errorf("evidence %v, want a credential alert: %v", rec.kinds(), tc.wantAlert)
			}
		})
	}
}
