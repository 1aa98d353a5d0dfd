package storage_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// legacyDB creates a SQLite file with the schema the orchestrator used
// before versioned migrations (testdata/v0-schema.sql), edited by edit, and
// one audit and one evidence entry in it.
func legacyDB(t *testing.T, edit func(string) string) string {
	t.Helper()
	schema, err := os.ReadFile("testdata/v0-schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "secureaudit.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{edit(string(schema)),
		`INSERT INTO audits (id, created_ns, state, data) VALUES ('a1', 1, 3, x'0a026131')`,
		`INSERT INTO evidence_entries (idx, time_ns, record) VALUES (0, 5, x'7b7d')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestLegacyDatabase: a database file made before migrations existed is
// adopted as schema version 1 with its rows, and migrated on.
func TestLegacyDatabase(t *testing.T) {
	path := legacyDB(t, func(s string) string { return s })
	db := storagetest.Open(t, path)
	ctx := context.Background()
	v, err := db.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	migrations, err := os.ReadDir(filepath.Join("migrations", "sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	// The newest is the highest number, not the count: numbers are handed
	// out to branches, so one may be missing until they merge.
	var want int64
	for _, m := range migrations {
		n, err := strconv.ParseInt(strings.SplitN(m.Name(), "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", m.Name(), err)
		}
		want = max(want, n)
	}
	if v != want {
		t.Errorf("schema version %d, want %d (the newest)", v, want)
	}
	var id string
	var idx int64
	if err := db.QueryRowContext(ctx, `SELECT id FROM audits`).Scan(&id); err != nil || id != "a1" {
		t.Errorf("audit after migration: %q, %v", id, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT idx FROM evidence_entries`).Scan(&idx); err != nil || idx != 0 {
		t.Errorf("evidence entry after migration: %d, %v", idx, err)
	}
}

// TestLegacyDatabaseMissingColumn: a file whose tables lack a column of the
// previous schema is refused, naming the file, the table, the column and
// what to do.
func TestLegacyDatabaseMissingColumn(t *testing.T) {
	path := legacyDB(t, func(s string) string {
		s = strings.Replace(s, "request_model    TEXT NOT NULL,", "", 1)
		return strings.Replace(s, "CREATE INDEX IF NOT EXISTS token_samples_request ON token_samples (agent, provider, request_model, seq);", "", 1)
	})
	_, err := storage.Open(context.Background(), path, nil)
	if err == nil {
		t.Fatal("a database without token_samples.request_model was opened")
	}
	for _, want := range []string{path, "token_samples has no column request_model", "mv " + path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestNewerSchemaRefused: a database migrated by a newer orchestrator is
// refused, naming it (without the password).
func TestNewerSchemaRefused(t *testing.T) {
	for _, b := range storagetest.Backends {
		t.Run(b, func(t *testing.T) {
			dsn := storagetest.DSN(t, b)
			db := storagetest.Open(t, dsn)
			if _, err := db.ExecContext(context.Background(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`, 99, true); err != nil {
				t.Fatal(err)
			}
			_, err := storage.Open(context.Background(), dsn, nil)
			if err == nil {
				t.Fatal("a database at schema version 99 was opened")
			}
			for _, want := range []string{"schema version 99", storage.Redact(dsn)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if pw, ok := password(dsn); ok && strings.Contains(err.Error(), pw) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func password(dsn string) (string, bool) {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "", false
	}
	return u.User.Password()
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/var/lib/secureaudit/secureaudit.db", "/var/lib/secureaudit/secureaudit.db"},
		{"postgres://audit:s3cret@db.internal:5432/secureaudit?sslmode=verify-full", "postgres://audit:xxxxx@db.internal:5432/secureaudit?sslmode=verify-full"},
		{"postgresql://audit@db/secureaudit?password=s3cret", "postgresql://audit@db/secureaudit?password=xxxxx"},
		{"postgres://audit:s3cret@db:bad port/x", "postgres://(unparsable address, not shown)"},
	}
	for _, tc := range tests {
		if got := storage.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestPostgresPasswordNotShown: neither the log of a successful open nor the
// error of a refused login contains the password.
func TestPostgresPasswordNotShown(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pw, _ := password(dsn)
	var logs bytes.Buffer
	db, err := storage.Open(context.Background(), dsn, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != storage.Postgres {
		t.Fatalf("dialect %v for %s", db.Dialect(), db)
	}
	if strings.Contains(logs.String(), pw) || strings.Contains(db.String(), pw) {
		t.Errorf("the password shows in the log or the name:\n%s\n%s", logs.String(), db)
	}
	if !strings.Contains(logs.String(), "database migrated") {
		t.Errorf("no migration in the log:\n%s", logs.String())
	}
	wrong := strings.Replace(dsn, pw, "not-the-password-42", 1)
	_, err = storage.Open(context.Background(), wrong, nil)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if strings.Contains(err.Error(), "not-the-password-42") || !strings.Contains(err.Error(), "xxxxx") {
		t.Errorf("error %q shows the password or does not name the database", err)
	}
}

// TestRebind: ? placeholders become $n for PostgreSQL, except inside quotes.
func TestRebind(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := storagetest.Open(t, dsn)
	got := db.Rebind(`SELECT a FROM t WHERE b = ? AND c = '?' AND "d?" = ? LIMIT ?`)
	want := `SELECT a FROM t WHERE b = $1 AND c = '?' AND "d?" = $2 LIMIT $3`
	if got != want {
		t.Errorf("Rebind = %q, want %q", got, want)
	}
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT CAST(? AS INTEGER) + CAST(? AS INTEGER)`, 40, 2).Scan(&n); err != nil || n != 42 {
		t.Errorf("SELECT ? + ? on PostgreSQL = %d, %v; want 42", n, err)
	}
}

// TestBackendsHaveTheSameTables: the two baselines declare the same tables
// with the same columns.
func TestBackendsHaveTheSameTables(t *testing.T) {
	ctx := context.Background()
	columns := map[string][]string{}
	for _, b := range storagetest.Backends {
		db := storagetest.Open(t, storagetest.DSN(t, b))
		q := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
		if db.Dialect() == storage.Postgres {
			q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'`
		}
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for rows.Next() {
			var table, col string
			if err := rows.Scan(&table, &col); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, table+"."+col)
		}
		rows.Close()
		sort.Strings(cols)
		columns[b] = cols
	}
	if len(columns["sqlite"]) < 60 {
		t.Fatalf("only %d columns in SQLite: %v", len(columns["sqlite"]), columns["sqlite"])
	}
	if diff := cmp.Diff(columns["sqlite"], columns["postgres"]); diff != "" {
		t.Errorf("tables (-sqlite +postgres):\n%s", diff)
	}
}
