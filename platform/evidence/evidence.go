// Package evidence defines SecureAudit's tamper-evident evidence log format
// and verifies exported bundles offline.
//
// The log is an RFC 6962 Merkle tree (golang.org/x/mod/sumdb/tlog) whose
// leaves are entry records: the exact JSON bytes of an Entry. Its head is a
// checkpoint in the C2SP tlog-checkpoint text form (origin, size, base64 root
// hash) signed as a C2SP signed note (golang.org/x/mod/sumdb/note) with the
// orchestrator's Ed25519 key. A Bundle carries a window of entries, each with
// an inclusion proof against the signed checkpoint, the entries just outside
// the window (so that dropping one at either edge shows), the public key,
// and an index of entries per SOC 2 criterion. Verify needs nothing else.
package evidence

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// BundleFormat names the bundle format version.
const BundleFormat = "secureaudit-evidence-bundle/v1"

// Kinds of entry.
const (
	KindControlResult = "control.result"
	KindApproval      = "approval"
	KindAlert         = "alert"
	KindAuditSummary  = "audit.summary"
)

// Outcomes of a control result.
const (
	OutcomePass = "pass"
	OutcomeFail = "fail"
	OutcomeInfo = "info"
)

// Entry is one record of the evidence log.
type Entry struct {
	// Time is when the orchestrator appended the entry.
	Time time.Time `json:"time"`
	// Kind is control.result, approval, alert or audit.summary.
	Kind string `json:"kind"`
	// Control names the control, such as scope, credential, regression or audit.
	Control string `json:"control"`
	// Criteria are the SOC 2 criteria the entry is evidence for, such as CC5.2.
	Criteria []string `json:"criteria"`
	// Subject is what the entry is about: an audit ID, a workload, a run.
	Subject string `json:"subject,omitempty"`
	// Outcome is pass, fail or info.
	Outcome string `json:"outcome,omitempty"`
	// Summary is one human-readable sentence.
	Summary string `json:"summary"`
	// Data holds the details as JSON.
	Data json.RawMessage `json:"data,omitempty"`
}

// Check returns an error if the entry lacks what every entry needs.
func (e *Entry) Check() error {
	switch {
	case e.Time.IsZero():
		return errors.New("entry has no time")
	case e.Kind == "":
		return errors.New("entry has no kind")
	case e.Control == "":
		return errors.New("entry has no control")
	case len(e.Criteria) == 0:
		return errors.New("entry names no SOC 2 criterion")
	case e.Summary == "":
		return errors.New("entry has no summary")
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return errors.New("entry data is not JSON")
	}
	return nil
}

// Record returns the bytes that are hashed into the log.
func (e *Entry) Record() ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	c := *e
	c.Time = c.Time.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode evidence entry: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseRecord decodes a record's bytes.
func ParseRecord(data []byte) (*Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("decode evidence entry: %w", err)
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Checkpoint is a log head: the tree size and root hash under an origin.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
}

// Text returns the checkpoint body in the C2SP tlog-checkpoint form.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// ParseCheckpoint reads a checkpoint body.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[3] != "" {
		return Checkpoint{}, errors.New("checkpoint is not three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return Checkpoint{}, fmt.Errorf("checkpoint size %q is not a number", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint root hash %q is malformed", lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Hash[:], raw)
	return c, nil
}

// BundleEntry is one entry of a bundle with its inclusion proof.
type BundleEntry struct {
	// Index is the entry's position in the log, from 0.
	Index int64 `json:"index"`
	// Record is the exact JSON the log hashed.
	Record string `json:"record"`
	// Proof is the inclusion proof against the bundle's checkpoint.
	Proof []tlog.Hash `json:"proof"`
}

// Bundle is an exported window of the evidence log.
type Bundle struct {
	Format string `json:"format"`
	// PublicKey is the signed-note verifier key of the log.
	PublicKey string `json:"publicKey"`
	// Checkpoint is the signed note of the log head the proofs refer to.
	Checkpoint string `json:"checkpoint"`
	// From and To bound the window by entry time; To is exclusive.
	// Zero means unbounded.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Entries are the entries in the window, in log order.
	Entries []BundleEntry `json:"entries"`
	// Before and After are the entries just outside the window, if any.
	Before *BundleEntry `json:"before,omitempty"`
	After  *BundleEntry `json:"after,omitempty"`
	// Criteria lists the indexes of the entries per SOC 2 criterion.
	Criteria map[string][]int64 `json:"criteria"`
}

// IndexCriteria builds the per-criterion index of entries.
func IndexCriteria(entries []BundleEntry) (map[string][]int64, error) {
	idx := map[string][]int64{}
	for _, be := range entries {
		e, err := ParseRecord([]byte(be.Record))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", be.Index, err)
		}
		for _, c := range e.Criteria {
			if !slices.Contains(idx[c], be.Index) {
				idx[c] = append(idx[c], be.Index)
			}
		}
	}
	return idx, nil
}

// EntryError names the first entry of a bundle that does not verify.
type EntryError struct {
	Index  int64
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("entry %d does not verify: %s", e.Index, e.Reason)
}

// Result summarizes a verified bundle.
type Result struct {
	Origin     string
	TreeSize   int64
	KeyName    string
	Entries    int
	FirstIndex int64
	Criteria   map[string]int
}

// ParseBundle decodes a bundle file.
func ParseBundle(data []byte) (*Bundle, error) {
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("decode evidence bundle: %w", err)
	}
	return &b, nil
}

// Verify checks a bundle offline: the checkpoint's signature by the bundle's
// key (which must equal trustedKey when that is not empty), every entry's
// inclusion in the signed tree, the window's completeness (consecutive
// indexes, and the entries just outside it really are outside), the entries'
// order in time, and the criterion index. An entry that fails is reported as
// an *EntryError naming it.
func Verify(b *Bundle, trustedKey string) (*Result, error) {
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("bundle format %q, want %q", b.Format, BundleFormat)
	}
	if trustedKey != "" && strings.TrimSpace(trustedKey) != b.PublicKey {
		return nil, fmt.Errorf("bundle is signed with key %q, not the trusted key %q", b.PublicKey, strings.TrimSpace(trustedKey))
	}
	verifier, err := note.NewVerifier(b.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature does not verify with key %s: %w", verifier.Name(), err)
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	if !b.To.IsZero() && !b.From.IsZero() && !b.To.After(b.From) {
		return nil, errors.New("bundle window ends before it starts")
	}
	res := &Result{Origin: cp.Origin, TreeSize: cp.Size, KeyName: verifier.Name(), Entries: len(b.Entries), Criteria: map[string]int{}}

	check := func(be *BundleEntry) (*Entry, error) {
		if be.Index < 0 || be.Index >= cp.Size {
			return nil, &EntryError{Index: be.Index, Reason: fmt.Sprintf("index outside the signed tree of %d entries", cp.Size)}
		}
		if err := tlog.CheckRecord(be.Proof, cp.Size, cp.Hash, be.Index, tlog.RecordHash([]byte(be.Record))); err != nil {
			return nil, &EntryError{Index: be.Index, Reason: "not in the signed tree at this position (altered, moved or forged): " + err.Error()}
		}
		e, err := ParseRecord([]byte(be.Record))
		if err != nil {
			return nil, &EntryError{Index: be.Index, Reason: err.Error()}
		}
		return e, nil
	}

	var prev *Entry
	for i := range b.Entries {
		be := &b.Entries[i]
		if i == 0 {
			res.FirstIndex = be.Index
		} else if want := b.Entries[i-1].Index + 1; be.Index != want {
			// Report the missing entry if one was dropped, or the entry
			// that is out of place.
			for _, later := range b.Entries[i+1:] {
				if later.Index == want {
					return nil, &EntryError{Index: be.Index, Reason: fmt.Sprintf("out of order (comes before entry %d)", want)}
				}
			}
			if be.Index > want {
				return nil, &EntryError{Index: want, Reason: fmt.Sprintf("missing from the bundle (entries jump from %d to %d)", want-1, be.Index)}
			}
			return nil, &EntryError{Index: be.Index, Reason: fmt.Sprintf("out of order (follows entry %d)", want-1)}
		}
		e, err := check(be)
		if err != nil {
			return nil, err
		}
		if prev != nil && e.Time.Before(prev.Time) {
			return nil, &EntryError{Index: be.Index, Reason: "earlier than the entry before it"}
		}
		if (!b.From.IsZero() && e.Time.Before(b.From)) || (!b.To.IsZero() && !e.Time.Before(b.To)) {
			return nil, &EntryError{Index: be.Index, Reason: "outside the bundle's time window"}
		}
		prev = e
		for _, c := range e.Criteria {
			res.Criteria[c]++
		}
	}

	// Completeness at the edges of the window.
	first, last := int64(-1), int64(-1)
	if len(b.Entries) > 0 {
		first, last = b.Entries[0].Index, b.Entries[len(b.Entries)-1].Index
	}
	if b.Before != nil {
		e, err := check(b.Before)
		if err != nil {
			return nil, err
		}
		if b.From.IsZero() || !e.Time.Before(b.From) {
			return nil, &EntryError{Index: b.Before.Index, Reason: "given as before the window but inside it: the window's first entries were dropped"}
		}
		if first >= 0 && b.Before.Index != first-1 {
			return nil, &EntryError{Index: b.Before.Index + 1, Reason: "missing from the bundle (after the entry before the window)"}
		}
	} else if first > 0 {
		return nil, &EntryError{Index: first - 1, Reason: "missing: the bundle neither holds it nor shows it is before the window"}
	}
	if b.After != nil {
		e, err := check(b.After)
		if err != nil {
			return nil, err
		}
		if b.To.IsZero() || e.Time.Before(b.To) {
			return nil, &EntryError{Index: b.After.Index, Reason: "given as after the window but inside it: the window's last entries were dropped"}
		}
		switch {
		case last >= 0 && b.After.Index != last+1:
			return nil, &EntryError{Index: last + 1, Reason: "missing from the bundle (before the entry after the window)"}
		case last < 0 && b.Before != nil && b.After.Index != b.Before.Index+1:
			return nil, &EntryError{Index: b.Before.Index + 1, Reason: "missing from the bundle (between the entries around the window)"}
		}
	} else if last >= 0 && last != cp.Size-1 {
		return nil, &EntryError{Index: last + 1, Reason: "missing: the bundle neither holds it nor shows it is after the window"}
	} else if last < 0 && b.Before != nil && b.Before.Index != cp.Size-1 {
		return nil, &EntryError{Index: b.Before.Index + 1, Reason: "missing: the window is empty but the log has later entries"}
	} else if last < 0 && b.Before == nil && cp.Size > 0 && b.From.IsZero() && b.To.IsZero() {
		return nil, &EntryError{Index: 0, Reason: "missing: the bundle claims the whole log but holds no entry"}
	}

	want, err := IndexCriteria(b.Entries)
	if err != nil {
		return nil, err
	}
	if err := sameIndex(want, b.Criteria); err != nil {
		return nil, err
	}
	return res, nil
}

func sameIndex(want, got map[string][]int64) error {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !slices.Equal(want[k], got[k]) {
			return fmt.Errorf("the criterion index for %s lists entries %v, but the entries name %s in %v", k, got[k], k, want[k])
		}
	}
	return nil
}

// Source reads a log's stored hashes and records.
type Source interface {
	tlog.HashReader
	// Records returns the records with indexes lo to hi-1.
	Records(lo, hi int64) ([][]byte, error)
}

// Sign signs a checkpoint with the log's key.
func Sign(cp Checkpoint, signer note.Signer) (string, error) {
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, signer)
	if err != nil {
		return "", fmt.Errorf("sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// NewBundle builds the bundle of entries lo to hi-1 of a log of size
// entries whose head is the signed checkpoint, with the time window that
// selected them.
func NewBundle(src Source, publicKey, signedCheckpoint string, size, lo, hi int64, from, to time.Time) (*Bundle, error) {
	if lo < 0 || hi < lo || hi > size {
		return nil, fmt.Errorf("entries %d to %d are not within a log of %d", lo, hi, size)
	}
	b := &Bundle{Format: BundleFormat, PublicKey: publicKey, Checkpoint: signedCheckpoint, From: from, To: to, Entries: []BundleEntry{}}
	entry := func(i int64, rec []byte) (BundleEntry, error) {
		proof, err := tlog.ProveRecord(size, i, src)
		if err != nil {
			return BundleEntry{}, fmt.Errorf("prove entry %d: %w", i, err)
		}
		return BundleEntry{Index: i, Record: string(rec), Proof: proof}, nil
	}
	recLo, recHi := lo, hi
	if lo > 0 {
		recLo--
	}
	if hi < size {
		recHi++
	}
	recs, err := src.Records(recLo, recHi)
	if err != nil {
		return nil, err
	}
	if int64(len(recs)) != recHi-recLo {
		return nil, fmt.Errorf("read %d records, want %d", len(recs), recHi-recLo)
	}
	for i := recLo; i < recHi; i++ {
		be, err := entry(i, recs[i-recLo])
		if err != nil {
			return nil, err
		}
		switch {
		case i < lo:
			b.Before = &be
		case i >= hi:
			b.After = &be
		default:
			b.Entries = append(b.Entries, be)
		}
	}
	b.Criteria, err = IndexCriteria(b.Entries)
	if err != nil {
		return nil, err
	}
	return b, nil
}
