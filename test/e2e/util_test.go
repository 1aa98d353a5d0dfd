package e2e

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"secureaudit.dev/platform/telemetry"
	"secureaudit.dev/platform/validation"
)

func validatorAndTracer(t *testing.T) (*validation.Validator, trace.TracerProvider) {
	t.Helper()
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing("test", "")
	if err != nil {
		t.Fatal(err)
	}
	return v, tr.Provider
}

// startBinary runs one more service process of the shared build with the
// shared PKI, listening on a port it picks itself, and returns its address
// and log path once it serves. The process is stopped when the test ends.
func startBinary(t testing.TB, name string, args ...string) (addr, logPath string) {
	t.Helper()
	addr, logPath, _ = startStoppable(t, name, args...)
	return addr, logPath
}

// startStoppable is startBinary that also returns a function stopping the
// process before the test ends (and waiting for it to exit).
func startStoppable(t testing.TB, name string, args ...string) (addr, logPath string, stop func()) {
	t.Helper()
	addr, logPath, stop, _ = startProcess(t, name, args...)
	return addr, logPath, stop
}

// startProcess is startStoppable that also returns the process, for tests
// that signal it.
func startProcess(t testing.TB, name string, args ...string) (addr, logPath string, stop func(), proc *os.Process) {
	t.Helper()
	dir := t.TempDir()
	addrFile := filepath.Join(dir, name+".addr")
	logPath = filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.binDir, name), append([]string{
		"-listen", "127.0.0.1:0", "-addr-file", addrFile, "-cert-dir", env.stack.PKIDir,
	}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(func() {
		stop()
		logFile.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, data)
		}
	})
	deadline := time.After(30 * time.Second)
	backoff := 10 * time.Millisecond
	for {
		if data, err := os.ReadFile(addrFile); err == nil && len(strings.TrimSpace(string(data))) > 0 {
			return strings.TrimSpace(string(data)), logPath, stop, cmd.Process
		}
		select {
		case <-exited:
			data, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited during start-up:\n%s", name, data)
		case <-deadline:
			t.Fatalf("%s did not start serving within 30s", name)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}
