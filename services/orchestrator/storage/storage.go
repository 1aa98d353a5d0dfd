// Package storage is the orchestrator's one database: a single connection
// pool shared by the store (audits, findings, reports, events, schedules,
// controls), the evidence log and the scope approvals, with versioned
// migrations embedded in the binary (pressly/goose, one directory of SQL per
// dialect).
//
// Two backends:
//   - SQLite (pure Go, modernc.org/sqlite), the default: -db names a file.
//     A database created before migrations existed is adopted as schema
//     version 1 after its columns are checked.
//   - PostgreSQL through jackc/pgx/v5: -db postgres://user:password@host/db.
//     The password is never logged nor put in an error: String and Redact
//     show the address with the password replaced.
//
// Queries are written once with ? placeholders; DB and Tx rewrite them to
// $1, $2, ... for PostgreSQL. SQL that differs between the two (locking, row
// claims) switches on Dialect explicitly.
package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect is the SQL dialect of a database.
type Dialect int

// The backends.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

//go:embed migrations
var migrations embed.FS

// PostgresMaxConns is the size of the PostgreSQL connection pool of one
// orchestrator process.
const PostgresMaxConns = 16

// DB is the orchestrator's database. It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect Dialect
	name    string // the SQLite path, or the PostgreSQL URL without its password

	mu    sync.RWMutex
	bound map[string]string // ? query -> $n query (PostgreSQL)
}

// IsPostgres says whether dsn selects the PostgreSQL backend.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn fit for a log line or an error: a PostgreSQL URL with
// its password (and any password query parameter) replaced by "xxxxx"; a
// file path as it is. A URL that does not parse is shown by its scheme only.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://(unparsable address, not shown)"
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// Open opens the database named by dsn (a SQLite file path, or a
// postgres:// URL) and brings its schema to the newest version this binary
// knows. It refuses a database whose schema is newer than that, and a
// SQLite file made by an earlier SecureAudit whose tables lack a column,
// naming the file and what to do.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*DB, error) {
	if dsn == "" {
		return nil, errors.New("database: no -db given (a SQLite file path or a postgres:// URL)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DB{name: Redact(dsn), bound: map[string]string{}}
	var err error
	if IsPostgres(dsn) {
		d.dialect = Postgres
		d.db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", d.name, redactErr(err, dsn))
		}
		d.db.SetMaxOpenConns(PostgresMaxConns)
		d.db.SetMaxIdleConns(PostgresMaxConns)
		d.db.SetConnMaxIdleTime(5 * time.Minute)
		if err := d.db.PingContext(ctx); err != nil {
			d.db.Close()
			return nil, fmt.Errorf("database %s: connect: %w", d.name, redactErr(err, dsn))
		}
	} else {
		path := strings.TrimPrefix(dsn, "sqlite://")
		d.name = path
		if err := PrepareFile(path); err != nil {
			return nil, err
		}
		// Reports are blobs of megabytes: 64 KiB pages (for a new database;
		// an existing one keeps its page size) cut the overflow pages SQLite
		// chains for them sixteenfold.
		d.db, err = sql.Open("sqlite", "file:"+path+"?_pragma=page_size(65536)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		// One connection: SQLite has one writer, and a transaction never
		// waits on another connection of the same process.
		d.db.SetMaxOpenConns(1)
	}
	if err := d.migrate(ctx, log); err != nil {
		d.db.Close()
		return nil, err
	}
	return d, nil
}

// redactErr replaces the password of dsn in an error's text, should a
// driver ever quote its configuration.
func redactErr(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil {
		return errors.New(strings.ReplaceAll(err.Error(), dsn, Redact(dsn)))
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// migrate applies the embedded migrations of the dialect.
func (d *DB) migrate(ctx context.Context, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations/"+d.dialect.String())
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithSlog(log.With("component", "migrations")), goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectSQLite3
	if d.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Replicas starting together migrate one at a time.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else if err := d.checkLegacy(ctx); err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, d.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("database %s: read the schema version: %w", d.name, err)
	}
	if current > target {
		return fmt.Errorf("database %s has schema version %d, newer than this orchestrator knows (%d): run the newer orchestrator that migrated it, or restore a backup taken before", d.name, current, target)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("database %s: migrate from schema version %d to %d: %w", d.name, current, target, err)
	}
	if len(results) > 0 {
		log.InfoContext(ctx, "database migrated", "database", d.name, "backend", d.dialect.String(), "from", current, "to", target)
	}
	return nil
}

// legacyColumns are the columns of each table as SecureAudit created them
// before versioned migrations; a database that has these tables but no
// goose version table is adopted as version 1 once they are all there.
var legacyColumns = map[string][]string{
	"audits":           {"id", "created_ns", "state", "data"},
	"findings":         {"audit_id", "idx", "id", "rule_id", "severity", "data"},
	"reports":          {"audit_id", "format", "data"},
	"report_inputs":    {"audit_id", "data"},
	"events":           {"audit_id", "seq", "data"},
	"model_calls":      {"audit_id", "idx", "data"},
	"token_samples":    {"seq", "agent", "provider", "response_model", "template_version", "request_model", "audit_id", "time_ns", "per_item", "calls", "truncated"},
	"token_alerts":     {"seq", "data"},
	"anomalies":        {"seq", "audit_id", "kind", "data"},
	"schedules":        {"name", "data"},
	"evidence_entries": {"idx", "time_ns", "record"},
	"evidence_hashes":  {"idx", "hash"},
	"scope_approvals":  {"id", "workload", "digest", "approver", "caller", "ticket", "reason", "approved_ns", "development", "evidence_index"},
	"scope_reviews":    {"id", "reviewer", "reviewed_ns", "evidence_index"},
	"scope_calls":      {"period", "server", "method", "caller", "code", "count", "first_ns", "last_ns"},
}

// checkLegacy checks a SQLite database that has tables but no version
// table: every table it has must have the columns of the previous schema.
func (d *DB) checkLegacy(ctx context.Context) error {
	var versioned int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version'`).Scan(&versioned); err != nil {
		return fmt.Errorf("database %s: %w", d.name, err)
	}
	if versioned > 0 {
		return nil
	}
	for table, want := range legacyColumns {
		rows, err := d.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			return fmt.Errorf("database %s: read the columns of %s: %w", d.name, table, err)
		}
		have := map[string]bool{}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return fmt.Errorf("database %s: read the columns of %s: %w", d.name, table, err)
			}
			have[name] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("database %s: read the columns of %s: %w", d.name, table, err)
		}
		if len(have) == 0 {
			continue // created by the migration
		}
		for _, c := range want {
			if !have[c] {
				return fmt.Errorf("database %s was made by an earlier SecureAudit and its table %s has no column %s, so it cannot be migrated: export the evidence you need with an orchestrator of that version, then move the file aside (mv %s %s.old) and start again with a new database", d.name, table, c, d.name, d.name)
			}
		}
	}
	return nil
}

// PrepareFile makes sure the SQLite database file at path exists and is
// private: its directory is created with mode 0700 when missing, the file
// with mode 0600 when missing, and an existing database, WAL or
// shared-memory file with any permission for group or others is refused with
// the command that fixes it: audits, findings and reports describe who can
// do what in a cluster.
func PrepareFile(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("create the database directory: %w", err)
			}
		}
	}
	var open []string
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database: %w", err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			open = append(open, fmt.Sprintf("%s (mode %04o)", p, info.Mode().Perm()))
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("refusing a database that others may read: %s; restrict it with: chmod 600 %s*, and check who read it meanwhile", strings.Join(open, ", "), path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, os.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("create database %s: %w", path, err)
	}
	return f.Close()
}

// Dialect returns the backend's dialect.
func (d *DB) Dialect() Dialect { return d.dialect }

// String names the database for logs: the SQLite path, or the PostgreSQL
// URL without its password.
func (d *DB) String() string { return d.name }

// Close closes the pool.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers, for readiness.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("database %s: %w", d.name, err)
	}
	return nil
}

// Version returns the schema version the database is at.
func (d *DB) Version(ctx context.Context) (int64, error) {
	var v int64
	err := d.db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("database %s: schema version: %w", d.name, err)
	}
	return v, nil
}

// ExecContext runs a statement written with ? placeholders.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, d.Rebind(query), args...)
}

// QueryContext runs a query written with ? placeholders.
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, d.Rebind(query), args...)
}

// QueryRowContext runs a query written with ? placeholders that returns one
// row.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, d.Rebind(query), args...)
}

// BeginTx starts a transaction.
func (d *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	tx, err := d.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{tx: tx, d: d}, nil
}

// Tx is a transaction whose statements are written with ? placeholders.
type Tx struct {
	tx *sql.Tx
	d  *DB
}

// ExecContext runs a statement in the transaction.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.Rebind(query), args...)
}

// QueryContext runs a query in the transaction.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.Rebind(query), args...)
}

// QueryRowContext runs a one-row query in the transaction.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.Rebind(query), args...)
}

// PrepareContext prepares a statement in the transaction.
func (t *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, t.d.Rebind(query))
}

// Commit commits the transaction.
func (t *Tx) Commit() error { return t.tx.Commit() }

// Rollback aborts the transaction; after Commit it is a no-op that returns
// sql.ErrTxDone.
func (t *Tx) Rollback() error { return t.tx.Rollback() }

// Rebind returns query with its ? placeholders in the dialect's form: as
// they are for SQLite, $1, $2, ... for PostgreSQL. A ? inside a quoted
// string or identifier is left alone.
func (d *DB) Rebind(query string) string {
	if d.dialect != Postgres {
		return query
	}
	d.mu.RLock()
	q, ok := d.bound[query]
	d.mu.RUnlock()
	if ok {
		return q
	}
	q = rebind(query)
	d.mu.Lock()
	d.bound[query] = q
	d.mu.Unlock()
	return q
}

func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
