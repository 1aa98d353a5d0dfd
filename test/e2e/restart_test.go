package e2e

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestUpRestartsAKilledService runs `secureaudit up` and kills its
// risk-agent with SIGKILL in the middle of an audit (stopped first, so that
// the audit is waiting on it when it dies): that audit fails naming the
// risk-agent, up starts the risk-agent again on its address and says so
// with the restart count, the other services keep running, and the next
// audit succeeds. The orchestrator killed comes back too, with the audits
// of its database. Ctrl-C still stops everything.
func TestUpRestartsAKilledService(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	up := exec.Command(filepath.Join(env.binDir, "secureaudit"), "up",
		"--snapshot", filepath.Join(env.root, "examples", "cluster"),
		"--directory", filepath.Join(env.root, "examples", "directory.json"),
		"--state-dir", state)
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	up.Stderr = os.Stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	done := make(chan error, 1)
	// exited is closed once up has exited; stopping, once the cleanup
	// below stops up (its output is then read and dropped).
	exited, stopping := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stopping:
			}
		}
		close(lines)
		err := up.Wait()
		close(exited)
		done <- err
	}()
	// A test that fails before its Ctrl-C stops up with one, so that up
	// stops the services it started (killing up alone would leave them
	// running); up is killed only if it has not exited within 30s.
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		close(stopping)
		_ = up.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = up.Process.Kill()
		}
	})
	// waitLine returns the first line of up's output containing all of want.
	var printed []string
	waitLine := func(timeout time.Duration, want ...string) string {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("up ended before printing %q; it printed:\n%s", want, strings.Join(printed, "\n"))
				}
				printed = append(printed, line)
				all := true
				for _, w := range want {
					all = all && strings.Contains(line, w)
				}
				if all {
					return line
				}
			case <-deadline:
				t.Fatalf("up did not print %q within %s; it printed:\n%s", want, timeout, strings.Join(printed, "\n"))
			}
		}
	}
	waitLine(time.Minute, "Ctrl-C stops the services")
	addrs := map[string]string{}
	for _, line := range printed {
		if f := strings.Fields(line); len(f) >= 2 && (strings.HasSuffix(f[0], "-agent") || f[0] == "orchestrator") {
			addrs[f[0]] = f[1]
		}
	}
	pid := func(name string) int {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(state, "run", name+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pids := map[string]int{}
	for _, name := range []string{"rbac-agent", "entra-agent", "risk-agent", "report-agent", "orchestrator"} {
		pids[name] = pid(name)
	}

	c, err := client.Dial(addrs["orchestrator"], filepath.Join(state, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	audit := func(onEvent func(*secureauditv1.AuditEvent)) (*client.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return c.Run(ctx, client.Options{OutDir: t.TempDir(), Formats: client.Formats, OnEvent: onEvent})
	}
	if _, err := audit(nil); err != nil {
		t.Fatalf("first audit: %v", err)
	}

	// The risk-agent stops answering; the audit reaches it and waits; then
	// the risk-agent dies.
	risk := pids["risk-agent"]
	if err := syscall.Kill(risk, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	killed := false
	res, err := audit(func(e *secureauditv1.AuditEvent) {
		if e.GetStage() == secureauditv1.AuditStage_AUDIT_STAGE_ASSESS && !killed {
			killed = true
			if err := syscall.Kill(risk, syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		}
	})
	if !killed {
		_ = syscall.Kill(risk, syscall.SIGKILL)
		t.Fatalf("the audit never reached the assess stage: %v", err)
	}
	var failed *secureauditv1.Audit
	if res != nil {
		failed = res.Audit
	}
	if err == nil || failed.GetState() != secureauditv1.AuditState_AUDIT_STATE_FAILED || !strings.Contains(failed.GetError(), "risk-agent") {
		t.Fatalf("audit whose risk-agent was killed: %v, %v; want FAILED naming the risk-agent", failed, err)
	}
	t.Logf("the audit in progress failed: %s", res.Audit.GetError())

	t.Logf("up: %s", waitLine(30*time.Second, "risk-agent exited (signal: killed)", "restart 1 in"))
	t.Logf("up: %s", waitLine(time.Minute, "risk-agent restarted on "+addrs["risk-agent"], "(restart 1)"))
	if p := pid("risk-agent"); p == risk {
		t.Errorf("the risk-agent's PID file still says %d", p)
	}
	for name, p := range pids {
		if name != "risk-agent" && syscall.Kill(p, 0) != nil {
			t.Errorf("%s (PID %d) is gone: only the risk-agent should have been restarted", name, p)
		}
	}
	// The orchestrator's connection to the risk-agent reconnects at most
	// 5s apart (gRPC's backoff): an audit started before it has may fail
	// with the connection's last error, naming the risk-agent, and the
	// next one succeeds. retried counts those audits.
	retried := 0
	for deadline := time.Now().Add(15 * time.Second); ; retried++ {
		res, err = audit(nil)
		if err == nil || !strings.Contains(err.Error(), "risk-agent: assess") || !strings.Contains(err.Error(), "Unavailable") || time.Now().After(deadline) {
			break
		}
		t.Logf("audit right after the restart, before the orchestrator reconnected: %v", err)
		<-time.After(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("audit after the restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(res.Files[0]), "report.json")); err != nil {
		t.Errorf("audit after the restart wrote no report.json: %v", err)
	}

	// The report-agent dies while an audit is assessing (the risk-agent,
	// stopped, holds the audit there): the audit's Render call, opened for
	// the findings as they arrive, ends with it; once the risk-agent
	// answers, the audit renders the stored findings in a call of its own,
	// which waits for up to start the report-agent again, and succeeds,
	// saying so in its events.
	risk = pid("risk-agent")
	if err := syscall.Kill(risk, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	killedReport := false
	var events []string
	res, err = audit(func(e *secureauditv1.AuditEvent) {
		events = append(events, e.GetMessage())
		if e.GetStage() == secureauditv1.AuditStage_AUDIT_STAGE_ASSESS && !killedReport {
			killedReport = true
			if err := syscall.Kill(pids["report-agent"], syscall.SIGKILL); err != nil {
				t.Error(err)
			}
			if err := syscall.Kill(risk, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	})
	if !killedReport {
		_ = syscall.Kill(risk, syscall.SIGCONT)
		t.Fatalf("the audit never reached the assess stage: %v", err)
	}
	if err != nil || res.Audit.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Fatalf("audit whose report-agent was killed while it assessed: %v; want it to render once the report-agent is back\nevents: %s", err, strings.Join(events, "\n"))
	}
	if !slices.ContainsFunc(events, func(m string) bool { return strings.Contains(m, "rendering from the stored findings") }) {
		t.Errorf("no event says the findings were rendered from the store:\n%s", strings.Join(events, "\n"))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(res.Files[0]), "report.html")); err != nil {
		t.Errorf("that audit wrote no report.html: %v", err)
	}
	t.Logf("up: %s", waitLine(time.Minute, "report-agent restarted on "+addrs["report-agent"], "(restart 1)"))

	// The orchestrator too comes back on its address, with its database.
	if err := syscall.Kill(pids["orchestrator"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("up: %s", waitLine(time.Minute, "orchestrator restarted on "+addrs["orchestrator"], "(restart 1)"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Run(ctx, client.Options{OutDir: t.TempDir(), Formats: client.Formats, WaitForReady: true}); err != nil {
		t.Fatalf("audit after the orchestrator's restart: %v", err)
	}
	list, err := c.API().ListAudits(ctx, &secureauditv1.ListAuditsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetAudits()); n != 5+retried {
		t.Errorf("the restarted orchestrator lists %d audits, want the %d of this test", n, 5+retried)
	}

	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up exited with %v after Ctrl-C", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up did not stop within 30s of Ctrl-C")
	}
	for name, addr := range addrs {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still listens on %s after up stopped", name, addr)
		}
	}
}
