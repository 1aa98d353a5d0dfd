package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDatabaseIsPrivate: a new database, its WAL and its directory are
// created for the orchestrator alone, whatever the umask; an existing
// database others may read is refused with the command that fixes it.
func TestDatabaseIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "secureaudit.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecContext(context.Background(), `INSERT INTO schedules (name, data) VALUES (?, ?)`, "nightly", []byte{1}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode %04o, want %04o", p, got, want)
		}
	}
	s.Close()

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path, nil)
	if err == nil {
		t.Fatal("a world-readable database was opened")
	}
	for _, w := range []string{path + " (mode 0644)", "chmod 600 " + path} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
	s.Close()
}
