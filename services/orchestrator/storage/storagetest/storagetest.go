// Package storagetest runs a test against each storage backend: a SQLite
// file in the test's temporary directory, and a database of its own on the
// PostgreSQL server platform/pgtest starts for the package (which needs
// func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) } in the package).
// Production code never imports it.
package storagetest

import (
	"context"
	"path/filepath"
	"testing"

	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/storage"
)

// Backends are the names of the backends, as subtest names.
var Backends = []string{"sqlite", "postgres"}

// DSN returns the -db value of a new, empty database of the backend.
func DSN(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case "sqlite":
		return filepath.Join(t.TempDir(), "secureaudit.db")
	case "postgres":
		return pgtest.NewDatabase(t)
	}
	t.Fatalf("unknown backend %q", backend)
	return ""
}

// Open opens dsn, closing it when the test ends.
func Open(t testing.TB, dsn string) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), dsn, rpctest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Run runs f as a subtest per backend, each with a new, empty database.
func Run(t *testing.T, f func(t *testing.T, db *storage.DB)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) {
			f(t, Open(t, DSN(t, b)))
		})
	}
}
