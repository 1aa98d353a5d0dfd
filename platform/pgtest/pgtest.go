// Package pgtest runs a real PostgreSQL server for tests: Debian's server
// binaries (/usr/lib/postgresql/<version>/bin, or initdb and postgres on the
// PATH) initialise a cluster in a temporary directory and serve it on a free
// loopback port, with its unix socket in that directory. Each test gets a
// database of its own; the server is stopped and its directory removed when
// the package's tests end (Main), so nothing is left running.
//
// initdb and postgres refuse to run as root: under root (CI and the
// development machines) they run as the user "postgres" that Debian's
// package creates (or "nobody"), with the directory handed to that user.
//
// Use from a package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	url := pgtest.NewDatabase(t) // postgres://...; skips or fails without the binaries
//
// or, for a server of one test's own (end-to-end tests), pgtest.Start(t).
//
// Without the binaries the tests skip with a loud reason, except in CI
// (CI=true), where they fail: CI cannot go green without PostgreSQL.
// Production code never imports this package.
package pgtest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// User is the superuser of the test cluster.
const User = "secureaudit"

// Server is a running PostgreSQL server.
type Server struct {
	dir      string
	bin      string
	port     int
	password string
	cred     *syscall.Credential
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error

	logMu sync.Mutex
	log   []string // the server's last log lines

	// Initdb and Start are how long initdb and the server's start took.
	Initdb, Start time.Duration

	dbs atomic.Int64
}

// ErrNoBinaries is returned by StartServer when no PostgreSQL server
// binaries are installed.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or on the PATH; install Debian's postgresql package (apt-get install postgresql)")

// BinDir returns the directory of the newest installed initdb and postgres.
func BinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil && filepath.Dir(initdb) == filepath.Dir(postgres) {
		return filepath.Dir(initdb), nil
	}
	return "", ErrNoBinaries
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// StartServer initialises a cluster in a new temporary directory and starts
// the server on a free loopback port. Stop it with Stop.
func StartServer() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, bin: bin, exited: make(chan struct{})}
	if err := s.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var startErr error
	for range 3 { // another process may take the free port before the server binds it
		if startErr = s.start(); startErr == nil {
			return s, nil
		}
		if !strings.Contains(startErr.Error(), "could not bind") && !strings.Contains(startErr.Error(), "could not create any TCP/IP sockets") {
			break
		}
		s.exited = make(chan struct{})
	}
	os.RemoveAll(dir)
	return nil, startErr
}

// init runs initdb, as an unprivileged user when this process is root.
func (s *Server) init() error {
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.password = hex.EncodeToString(buf)
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err != nil {
			return err
		}
		s.cred = cred
	}
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Mkdir(filepath.Join(s.dir, "sock"), 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if s.cred != nil {
		if err := chownAll(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	start := time.Now()
	// Password (SCRAM) over TCP, as a real deployment; trust on the socket
	// in the private directory, for NewDatabase.
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", User,
		"--pwfile", pwfile, "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	s.Initdb = time.Since(start)
	return nil
}

// unprivileged returns the credentials of the user "postgres" (Debian's
// package creates it), or of "nobody".
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("pgtest: running as root, and neither the user postgres nor nobody exists to run initdb and postgres as (they refuse root)")
}

func chownAll(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("pgtest: hand %s to uid %d: %w", p, uid, err)
		}
		return nil
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start starts postgres and waits until its log says it accepts
// connections (or it exits).
func (s *Server) start() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"), "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+filepath.Join(s.dir, "sock"),
		// A throwaway cluster: durability off, for speed.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	// Pdeathsig: if the test binary dies, the server shuts down at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	cmd.Dir = s.dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd.Stdout = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd = cmd
	ready := make(chan struct{})
	go s.readLog(stderr, ready)
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-ready:
		s.Start = time.Since(start)
		return nil
	case <-s.exited:
		return fmt.Errorf("pgtest: postgres exited at start (%v):\n%s", s.waitErr, s.Log())
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("pgtest: postgres did not accept connections within 60s:\n%s", s.Log())
	}
}

func (s *Server) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		s.logMu.Lock()
		s.log = append(s.log, line)
		if len(s.log) > 200 {
			s.log = s.log[len(s.log)-200:]
		}
		s.logMu.Unlock()
		if !signalled && strings.Contains(line, "database system is ready to accept connections") {
			signalled = true
			close(ready)
		}
	}
}

// Log returns the server's last log lines.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return strings.Join(s.log, "\n")
}

// Password returns the password of User.
func (s *Server) Password() string { return s.password }

// Port returns the server's loopback port.
func (s *Server) Port() int { return s.port }

// URL returns the postgres:// URL of a database as User, with its password,
// over TCP on loopback.
func (s *Server) URL(database string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(User, s.password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates a new, empty database and returns its name.
func (s *Server) CreateDatabase() (string, error) {
	name := fmt.Sprintf("t%d", s.dbs.Add(1))
	// createdb runs as this process over the private unix socket (trust).
	cmd := exec.Command(filepath.Join(s.bin, "createdb"), "-h", filepath.Join(s.dir, "sock"), "-p", strconv.Itoa(s.port), "-U", User, name)
	if _, err := os.Stat(cmd.Path); err != nil {
		return "", fmt.Errorf("pgtest: %s not found next to postgres: %w", cmd.Path, err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pgtest: createdb %s: %w\n%s", name, err, out)
	}
	return name, nil
}

// Stop shuts the server down (fast shutdown: open connections are ended)
// and removes its directory.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.dir)
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("pgtest: postgres did not stop within 30s of SIGINT; killed")
	}
}

// Start starts a server of the test's own, stopped and removed when the test
// ends. Without binaries it skips tb with a loud reason, or fails it when
// CI=true.
func Start(tb testing.TB) *Server {
	tb.Helper()
	srv, err := StartServer()
	if errors.Is(err, ErrNoBinaries) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true and %v", err)
		}
		tb.Skipf("SKIPPING the PostgreSQL backend: %v (in CI this fails)", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("pgtest: PostgreSQL on 127.0.0.1:%d: initdb %v, server start %v", srv.port, srv.Initdb.Round(time.Millisecond), srv.Start.Round(time.Millisecond))
	tb.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return srv
}

var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the server of this test binary, starting it at the first
// call; Main stops it. Without binaries it skips tb with a loud reason, or
// fails it when CI=true.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = StartServer()
		if shared.err == nil {
			fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL (%s) started on 127.0.0.1:%d: initdb %v, server start %v\n",
				shared.srv.bin, shared.srv.port, shared.srv.Initdb.Round(time.Millisecond), shared.srv.Start.Round(time.Millisecond))
		}
	}
	if errors.Is(shared.err, ErrNoBinaries) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true and %v", shared.err)
		}
		tb.Skipf("SKIPPING the PostgreSQL backend: %v (in CI this fails)", shared.err)
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.srv
}

// NewDatabase returns the postgres:// URL of a new, empty database on the
// shared server.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	srv := Shared(tb)
	name, err := srv.CreateDatabase()
	if err != nil {
		tb.Fatal(err)
	}
	return srv.URL(name)
}

// Main runs the tests of a package and then stops the shared server, if
// one was started; it returns the exit code for os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	return code
}
