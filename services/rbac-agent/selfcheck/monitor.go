package selfcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Defaults of a Monitor.
const (
	// DefaultInterval is how often the check runs again with the same
	// credential.
	DefaultInterval = 10 * time.Minute
	// DefaultPoll is how often the credential is looked at for a change.
	DefaultPoll = 10 * time.Second
)

// Monitor keeps the credential self-check off the audit's path: it runs the
// check beside serving, again every interval and as soon as the credential
// changes, and keeps the latest result, which Presented returns. An audit
// never waits for it.
type Monitor struct {
	client     kubernetes.Interface
	declared   []Rule
	log        *slog.Logger
	interval   time.Duration
	poll       time.Duration
	credential func() string
	check      []CheckOption
	latest     atomic.Pointer[string]
	runs       atomic.Int64
}

// MonitorOption configures a Monitor.
type MonitorOption func(*Monitor)

// WithInterval sets how often the check runs with an unchanged credential.
func WithInterval(d time.Duration) MonitorOption {
	return func(m *Monitor) {
		if d > 0 {
			m.interval = d
		}
	}
}

// WithCredential sets the credential's fingerprint and how often it is
// read: a change runs the check again at once. FilesFingerprint fits.
func WithCredential(fingerprint func() string, poll time.Duration) MonitorOption {
	return func(m *Monitor) {
		m.credential = fingerprint
		if poll > 0 {
			m.poll = poll
		}
	}
}

// WithCheckOptions passes options to every Check (parallelism).
func WithCheckOptions(opts ...CheckOption) MonitorOption {
	return func(m *Monitor) { m.check = opts }
}

// NewMonitor returns a monitor checking client's credential against declared.
func NewMonitor(client kubernetes.Interface, declared []Rule, log *slog.Logger, opts ...MonitorOption) *Monitor {
	m := &Monitor{client: client, declared: declared, log: log, interval: DefaultInterval, poll: DefaultPoll}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// Presented returns the latest check as the rbac-agent presents it (see
// Presented), or "" before the first check finished: the agent then
// presents no check, and the orchestrator records none, rather than a
// result that is not one.
func (m *Monitor) Presented() string {
	if p := m.latest.Load(); p != nil {
		return *p
	}
	return ""
}

// Runs counts the checks finished.
func (m *Monitor) Runs() int64 { return m.runs.Load() }

// Run checks now, then again every interval and whenever the credential's
// fingerprint changes, until ctx ends. A check that fails with the
// credential unchanged keeps the previous result (the failure is logged);
// a failure with a new credential, or before any result, is presented as
// the check's error.
func (m *Monitor) Run(ctx context.Context) error {
	var (
		fp      string
		lastRun time.Time
	)
	if m.credential != nil {
		fp = m.credential()
	}
	run := func(changed bool) {
		start := time.Now()
		rep, err := Check(ctx, m.client, m.declared, m.check...)
		if ctx.Err() != nil {
			return
		}
		lastRun = time.Now()
		m.runs.Add(1)
		proof := Presented(rep, err)
		if err != nil && !changed && m.latest.Load() != nil {
			m.log.WarnContext(ctx, "credential self-check failed; the previous result stands", "error", err.Error())
			return
		}
		if prev := m.latest.Load(); prev == nil || *prev != proof {
			m.log.InfoContext(ctx, "credential self-check", "result", proof, "duration", time.Since(start))
		}
		m.latest.Store(&proof)
	}
	run(true)
	t := time.NewTicker(min(m.poll, m.interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed := false
		if m.credential != nil {
			if now := m.credential(); now != fp {
				fp, changed = now, true
				m.log.InfoContext(ctx, "credential changed; running the self-check again")
			}
		}
		if changed || time.Since(lastRun) >= m.interval {
			run(changed)
		}
	}
}

// FilesFingerprint returns a fingerprint of the contents of the files that
// hold a credential (a kubeconfig, a token file, a client certificate and
// key); a file that cannot be read counts as empty.
func FilesFingerprint(paths ...string) func() string {
	return func() string {
		h := sha256.New()
		for _, p := range paths {
			if p == "" {
				continue
			}
			data, _ := os.ReadFile(p) //nolint:errcheck // an unreadable file is a change too
			sum := sha256.Sum256(data)
			h.Write([]byte(p))
			h.Write(sum[:])
		}
		return hex.EncodeToString(h.Sum(nil))
	}
}
