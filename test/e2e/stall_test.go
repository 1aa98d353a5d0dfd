package e2e

import (
	"strings"
	"syscall"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestStoppedAgentFailsTheAuditAndTheQueueMovesOn stops a risk-agent with
// SIGSTOP (it keeps its port but never answers): the audit fails when the
// assess stage's budget runs out, with a message naming the agent and the
// stage, instead of staying RUNNING; once the agent continues, the next audit
// on the same orchestrator runs and succeeds.
func TestStoppedAgentFailsTheAuditAndTheQueueMovesOn(t *testing.T) {
	risk, _, _, proc := startProcess(t, "risk-agent")
	orch := startOrchestrator(t,
		"-rbac-agent", addr(t, "rbac-agent"),
		"-risk-agent", risk,
		"-report-agent", addr(t, "report-agent"),
		"-assess-timeout", "3s")
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = proc.Signal(syscall.SIGCONT)
		}
	}()
	a, err := runUntilDone(t, orch)
	if err == nil || a == nil || a.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED {
		t.Fatalf("audit with a stopped risk-agent: %v, err %v; want FAILED", a, err)
	}
	for _, w := range []string{"risk-agent", "assess", "budget of 3s", "-assess-timeout"} {
		if !strings.Contains(a.GetError(), w) {
			t.Errorf("error %q does not name %q", a.GetError(), w)
		}
	}
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	a, err = runUntilDone(t, orch)
	if err != nil || a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Fatalf("next audit after the agent continued: %v, err %v; want SUCCEEDED", a, err)
	}
}
