package pgtest

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestStartStop starts a server of its own, checks that it serves on its
// loopback port and that Stop ends the process and removes the directory.
func TestStartStop(t *testing.T) {
	srv, err := StartServer()
	if errors.Is(err, ErrNoBinaries) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("SKIPPING: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initdb %v, start %v", srv.Initdb, srv.Start)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
	if err != nil {
		t.Fatalf("server does not listen: %v", err)
	}
	c.Close()
	name, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	if name == "" {
		t.Error("CreateDatabase returned no name")
	}
	pid := srv.cmd.Process.Pid
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postgres (pid %d) still there after Stop: kill -0 = %v", pid, err)
	}
	if _, err := os.Stat(srv.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s still there after Stop: %v", srv.dir, err)
	}
}
