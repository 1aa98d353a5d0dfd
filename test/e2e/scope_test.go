package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
)

// TestScopeQuarantine: the local stack starts with development approvals of
// the bundled manifests; approving another digest for the report-agent
// quarantines it, and an audit then fails saying why; approving the
// presented digest again lifts the quarantine. The review shows the calls.
func TestScopeQuarantine(t *testing.T) {
	c, err := client.Dial(addr(t, identity.Orchestrator), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	api := secureauditv1.NewScopeServiceClient(c.Conn())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	list := func() map[string]*secureauditv1.ScopeStatus {
		t.Helper()
		resp, err := api.ListScopes(ctx, &secureauditv1.ListScopesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*secureauditv1.ScopeStatus{}
		for _, s := range resp.GetScopes() {
			out[s.GetWorkload()] = s
		}
		return out
	}
	before := list()
	for _, w := range []string{identity.RBACAgent, identity.EntraAgent, identity.RiskAgent, identity.ReportAgent} {
		s := before[w]
		if s.GetState() != secureauditv1.ScopeState_SCOPE_STATE_APPROVED || !s.GetApproval().GetDevelopment() {
			t.Errorf("%s: %v, want approved by a development approval", w, s)
		}
	}
	presented := before[identity.ReportAgent].GetPresentedDigest()
	restore := func() {
		if _, err := api.ApproveScope(ctx, &secureauditv1.ApproveScopeRequest{Workload: identity.ReportAgent, Digest: presented, Approver: "e2e", Ticket: "TEST-2"}); err != nil {
			t.Fatal(err)
		}
	}
	defer restore()

	if _, err := api.ApproveScope(ctx, &secureauditv1.ApproveScopeRequest{Workload: identity.ReportAgent, Digest: "sha256:" + strings.Repeat("0", 64), Approver: "e2e", Ticket: "TEST-1"}); err != nil {
		t.Fatal(err)
	}
	s := list()[identity.ReportAgent]
	if s.GetState() != secureauditv1.ScopeState_SCOPE_STATE_QUARANTINED || !strings.Contains(s.GetReason(), "changed") {
		t.Fatalf("report-agent after approving another digest: %v, want quarantined", s)
	}
	_, err = c.Run(ctx, client.Options{OutDir: filepath.Join(t.TempDir(), "out"), Formats: client.Formats[:1]})
	if err == nil || !strings.Contains(err.Error(), "report-agent is quarantined") {
		t.Errorf("audit with a quarantined agent: %v, want a failure naming it", err)
	}

	restore()
	if s := list()[identity.ReportAgent]; s.GetState() != secureauditv1.ScopeState_SCOPE_STATE_APPROVED {
		t.Errorf("report-agent after re-approval: %v", s)
	}
	rev, err := api.ReviewScopes(ctx, &secureauditv1.ReviewScopesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## rbac-agent", "/secureaudit.v1.AuditService/StartAudit", "ticket TEST-2"} {
		if !strings.Contains(rev.GetMarkdown(), want) {
			t.Errorf("review does not mention %q:\n%s", want, rev.GetMarkdown())
		}
	}
}
