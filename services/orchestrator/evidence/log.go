// Package evidence is the orchestrator's tamper-evident evidence log: an
// append-only RFC 6962 Merkle tree in the orchestrator's database (SQLite or PostgreSQL),
// whose head is signed with an Ed25519 key the orchestrator generates at first
// start (a signed-note key file of mode 0600).
//
// Every control result, approval, alert and audit summary is appended with
// Log.Append (several in one transaction with Log.AppendAll, or together
// with the changes they record with Log.AppendAllWith). Code that produces
// evidence should declare the one-method interface it needs where it
// consumes it:
//
//	type Recorder interface {
//		Append(ctx context.Context, e evidence.Entry) (int64, error)
//	}
//
// (evidence.Entry from secureaudit.dev/platform/evidence), fill Kind,
// Control, Criteria (SOC 2 criteria such as "CC4.1"), Subject, Outcome,
// Summary and Data, and leave Time zero: the log stamps it. Export builds a
// bundle that `secureaudit evidence verify` checks offline.
package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/storage"
)

// KeyName is the signed-note key name of the log.
const KeyName = "secureaudit-evidence"

// Origin is the checkpoint origin line.
const Origin = "secureaudit.dev/evidence"

// Log is the evidence log. It is safe for concurrent use, and several
// orchestrator replicas may append to one PostgreSQL database: appends are
// serialised in the database (an advisory transaction lock), so no two
// entries get one index and none is skipped.
type Log struct {
	db     *storage.DB
	signer note.Signer
	vkey   string
	now    func() time.Time
}

// appendLock is the PostgreSQL advisory lock key that serialises appends
// (any fixed number; "evidence" in ASCII).
const appendLock = 0x65766964656e6365

// Option configures a Log.
type Option func(*Log)

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

// New opens the log in the orchestrator's database (its tables come with
// db's migrations) and loads the signing key from keyPath, generating it on
// first start. Every replica on one database must use the same key.
func New(ctx context.Context, db *storage.DB, keyPath string, opts ...Option) (*Log, error) {
	signer, vkey, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	l := &Log{db: db, signer: signer, vkey: vkey, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	if err := l.checkKey(ctx, keyPath); err != nil {
		return nil, err
	}
	return l, nil
}

// checkKey records the log's public key in the database at first use and,
// on PostgreSQL (several replicas), refuses a key other than the recorded
// one: a replica with a key of its own would sign checkpoints nobody pinned.
func (l *Log) checkKey(ctx context.Context, keyPath string) error {
	if _, err := l.db.ExecContext(ctx, `INSERT INTO evidence_key (id, public_key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, l.vkey); err != nil {
		return fmt.Errorf("record the evidence key: %w", err)
	}
	var recorded string
	if err := l.db.QueryRowContext(ctx, `SELECT public_key FROM evidence_key WHERE id = 1`).Scan(&recorded); err != nil {
		return fmt.Errorf("read the evidence key: %w", err)
	}
	if recorded != l.vkey && l.db.Dialect() == storage.Postgres {
		return fmt.Errorf("evidence key %s (public key %s) is not the key the evidence log in %s is signed with (%s): give every replica the same key file (the Secret secureaudit-evidence-key)",
			keyPath, l.vkey, l.db, recorded)
	}
	return nil
}

// loadKey reads the signed-note private key at path, or generates one and
// writes it with mode 0600. It refuses a key file others can read.
func loadKey(path string) (note.Signer, string, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		skey, _, err := note.GenerateKey(rand.Reader, KeyName)
		if err != nil {
			return nil, "", fmt.Errorf("generate evidence key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("create evidence key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, "", fmt.Errorf("write evidence key: %w", err)
		}
		if _, err := f.WriteString(skey + "\n"); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("write evidence key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, "", fmt.Errorf("write evidence key %s: %w", path, err)
		}
		data = []byte(skey)
	case err != nil:
		return nil, "", fmt.Errorf("read evidence key: %w", err)
	default:
		info, err := os.Stat(path)
		if err != nil {
			return nil, "", fmt.Errorf("stat evidence key: %w", err)
		}
		if err := keyModeOK(info); err != nil {
			return nil, "", fmt.Errorf("evidence key %s: %w", path, err)
		}
	}
	skey := string(trimNewline(data))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("evidence key %s: %w", path, err)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return nil, "", err
	}
	return signer, vkey, nil
}

// keyModeOK is PostgreSQL's rule for its server key: a key file owned by
// this process's user must be readable by that user only (0600 or less); a
// key owned by root may also be read by its group (0640 or less), which is
// how Kubernetes mounts a Secret for a non-root container (root-owned, the
// pod's fsGroup, mode 0440). Nobody else may ever read it.
func keyModeOK(info os.FileInfo) error {
	perm := info.Mode().Perm()
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case perm&0o007 != 0:
	case perm&0o070 == 0:
		return nil
	case ok && st.Uid == 0 && perm&0o030 == 0:
		return nil // root-owned, group read-only: a Kubernetes Secret
	}
	return fmt.Errorf("mode %v: it must be readable by its owner only (chmod 600), or be owned by root and readable by its group only (a Kubernetes Secret with defaultMode 0440)", perm)
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// PublicKey returns the signed-note verifier key an auditor pins.
func (l *Log) PublicKey() string { return l.vkey }

// Append stamps the entry with the time, appends it and returns its index.
// Times never go backwards within the log, whichever replica appends.
func (l *Log) Append(ctx context.Context, e evidence.Entry) (int64, error) {
	idx, err := l.AppendAll(ctx, []evidence.Entry{e})
	if err != nil {
		return 0, err
	}
	return idx[0], nil
}

// AppendAll appends entries in their order, in one transaction, and
// returns their indexes (consecutive): the same log as appending them one
// by one with Append, at one commit (one fsync on SQLite) instead of one per
// entry. No other append comes between them.
func (l *Log) AppendAll(ctx context.Context, entries []evidence.Entry) ([]int64, error) {
	return l.AppendAllWith(ctx, func(context.Context, *storage.Tx) ([]evidence.Entry, error) { return entries, nil })
}

// AppendAllWith runs write in a transaction of the log's database (the
// orchestrator's) under the log's append lock, appends the entries write
// returns in their order and commits: write's changes and their evidence
// entries are stored together or not at all, so a crash leaves neither a
// state change without its evidence nor evidence of a change not made.
// write runs before the next index is read; it may decide which entries to
// append from what its statements find (a row another replica changed
// first). write must read and write through tx only: on SQLite the pool's
// one connection is the transaction's, so a statement on the database
// itself would wait for it forever. It returns the entries' indexes, none
// when write returns none (its changes are still committed).
func (l *Log) AppendAllWith(ctx context.Context, write func(ctx context.Context, tx *storage.Tx) ([]evidence.Entry, error)) ([]int64, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("append evidence: %w", err)
	}
	defer tx.Rollback()
	if l.db.Dialect() == storage.Postgres {
		// Held until commit: the next append reads this one's index.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(appendLock)); err != nil {
			return nil, fmt.Errorf("append evidence: lock the log: %w", err)
		}
	}
	// SQLite: the one connection of the pool serialises transactions.
	entries, err := write(ctx, tx)
	if err != nil {
		return nil, err
	}
	var n, lastNS int64
	if len(entries) > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0), COALESCE(MAX(time_ns), 0) FROM evidence_entries`).Scan(&n, &lastNS); err != nil {
			return nil, fmt.Errorf("append evidence: %w", err)
		}
	}
	// The hashes this transaction stored, so that each entry's hashes read
	// the previous entries' from memory rather than back from the database.
	hr := hashReader{ctx: ctx, q: tx, written: map[int64]tlog.Hash{}}
	out := make([]int64, 0, len(entries))
	// The rows are inserted after the loop, many to a statement: one round
	// trip per few hundred rows rather than per row on PostgreSQL.
	var entryRows, hashRows [][]any
	last := time.Unix(0, lastNS)
	for _, e := range entries {
		t := l.now().UTC()
		if lastNS != 0 && !t.After(last) {
			t = last.Add(time.Nanosecond).UTC()
		}
		last, lastNS = t, t.UnixNano()
		e.Time = t
		rec, err := e.Record()
		if err != nil {
			return nil, err
		}
		hashes, err := tlog.StoredHashes(n, rec, hr)
		if err != nil {
			return nil, fmt.Errorf("append evidence: %w", err)
		}
		entryRows = append(entryRows, []any{n, t.UnixNano(), rec})
		base := tlog.StoredHashCount(n)
		for i, h := range hashes {
			hr.written[base+int64(i)] = h
			hashRows = append(hashRows, []any{base + int64(i), h[:]})
		}
		out = append(out, n)
		n++
	}
	if err := insertRows(ctx, tx, `INSERT INTO evidence_entries (idx, time_ns, record) VALUES `, `(?, ?, ?)`, entryRows); err != nil {
		return nil, fmt.Errorf("append evidence: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO evidence_hashes (idx, hash) VALUES `, `(?, ?)`, hashRows); err != nil {
		return nil, fmt.Errorf("append evidence: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("append evidence: %w", err)
	}
	return out, nil
}

// rowsPerInsert bounds the rows of one INSERT: 256 rows of 3 columns stay
// far below SQLite's and PostgreSQL's limits on a statement's parameters.
const rowsPerInsert = 256

// insertRows inserts rows with statements of insert followed by one values
// tuple per row, at most rowsPerInsert rows each.
func insertRows(ctx context.Context, tx *storage.Tx, insert, values string, rows [][]any) error {
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), rowsPerInsert)]
		rows = rows[len(chunk):]
		var b strings.Builder
		b.WriteString(insert)
		args := make([]any, 0, len(chunk)*len(chunk[0]))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(values)
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// Size returns the number of entries.
func (l *Log) Size(ctx context.Context) (int64, error) {
	var n int64
	if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM evidence_entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count evidence: %w", err)
	}
	return n, nil
}

// Entries returns the entries with indexes lo to hi-1, decoded.
func (l *Log) Entries(ctx context.Context, lo, hi int64) ([]*evidence.Entry, error) {
	recs, err := (source{ctx: ctx, q: l.db}).Records(lo, hi)
	if err != nil {
		return nil, err
	}
	out := make([]*evidence.Entry, 0, len(recs))
	for i, r := range recs {
		e, err := evidence.ParseRecord(r)
		if err != nil {
			return nil, fmt.Errorf("evidence entry %d: %w", lo+int64(i), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Export signs the current head and returns the bundle of entries whose time
// is in [from, to); a zero bound is open.
func (l *Log) Export(ctx context.Context, from, to time.Time) (*evidence.Bundle, error) {
	// One snapshot for the head, the hashes and the entries, while other
	// replicas append.
	opts := &sql.TxOptions{ReadOnly: true}
	if l.db.Dialect() == storage.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := l.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("export evidence: %w", err)
	}
	defer tx.Rollback()
	var size int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM evidence_entries`).Scan(&size); err != nil {
		return nil, fmt.Errorf("export evidence: %w", err)
	}
	src := source{ctx: ctx, q: tx}
	root, err := tlog.TreeHash(size, src)
	if err != nil {
		return nil, fmt.Errorf("export evidence: tree hash: %w", err)
	}
	signed, err := evidence.Sign(evidence.Checkpoint{Origin: Origin, Size: size, Hash: root}, l.signer)
	if err != nil {
		return nil, err
	}
	lo, hi := int64(0), size
	if !from.IsZero() {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM evidence_entries WHERE time_ns < ?`, from.UnixNano()).Scan(&lo); err != nil {
			return nil, fmt.Errorf("export evidence: %w", err)
		}
	}
	if !to.IsZero() {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM evidence_entries WHERE time_ns < ?`, to.UnixNano()).Scan(&hi); err != nil {
			return nil, fmt.Errorf("export evidence: %w", err)
		}
	}
	if hi < lo {
		hi = lo
	}
	return evidence.NewBundle(src, l.vkey, signed, size, lo, hi, from.UTC(), to.UTC())
}

// querier is a storage.DB or storage.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hashReader reads stored hashes: from written (the hashes the reading
// transaction stored itself, when it has them), else from the database.
type hashReader struct {
	ctx     context.Context
	q       querier
	written map[int64]tlog.Hash
}

func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if h, ok := r.written[x]; ok {
			out[i] = h
			continue
		}
		var b []byte
		if err := r.q.QueryRowContext(r.ctx, `SELECT hash FROM evidence_hashes WHERE idx = ?`, x).Scan(&b); err != nil {
			return nil, fmt.Errorf("read evidence hash %d: %w", x, err)
		}
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("evidence hash %d is %d bytes", x, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// source is the log as evidence.NewBundle reads it.
type source struct {
	ctx context.Context
	q   querier
}

func (s source) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return hashReader{ctx: s.ctx, q: s.q}.ReadHashes(indexes)
}

func (s source) Records(lo, hi int64) ([][]byte, error) {
	rows, err := s.q.QueryContext(s.ctx, `SELECT idx, record FROM evidence_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read evidence: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var idx int64
		var rec []byte
		if err := rows.Scan(&idx, &rec); err != nil {
			return nil, fmt.Errorf("read evidence: %w", err)
		}
		if idx != lo+int64(len(out)) {
			return nil, fmt.Errorf("evidence entry %d is missing from the store", lo+int64(len(out)))
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read evidence: %w", err)
	}
	return out, nil
}

// verifierKey derives the signed-note verifier key from a private key
// "PRIVATE+KEY+<name>+<hash>+<base64(alg, seed)>".
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("evidence key is not a signed-note private key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("evidence key is not an Ed25519 signed-note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey := parts[2] + "+" + parts[3] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, pub...))
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("derive evidence verifier key: %w", err)
	}
	return vkey, nil
}
