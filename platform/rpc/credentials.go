package rpc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
)

// DefaultReloadInterval is how often Credentials look at their files for a
// rotated certificate, key or trust bundle.
const DefaultReloadInterval = time.Second

// Credentials are a workload's X.509-SVID and the trust bundle, read from the
// files that csi-driver-spiffe, spiffe-helper or `secureaudit up` write, and
// read again when those files change, without a restart: every TLS handshake
// (GetCertificate, GetClientCertificate, the peer's verification) and every
// call's authentication take the material current at that moment, so a
// rotated certificate is presented on the next connection while RPCs on
// existing connections go on.
//
// A rewrite that cannot be used (a certificate whose key is not written yet,
// a certificate for another identity, a truncated file) keeps the previous
// material and is tried again at the next look; Check and Watch report it.
type Credentials struct {
	files pki.Files
	// socket is the Workload API's address when the material comes from
	// it (WorkloadAPICredentials) instead of files; close stops following it.
	socket   string
	close    func() error
	id       spiffeid.ID
	interval time.Duration

	cur       atomic.Pointer[material]
	lastLook  atomic.Int64 // unix nanoseconds of the last look at the files
	mu        sync.Mutex   // serializes reloads
	reloadErr error        // the last rewrite refused, nil once one is used
	log       atomic.Pointer[slog.Logger]
}

type material struct {
	cert, key, ca []byte // the files' contents, to see a rewrite
	svid          *x509svid.SVID
	bundle        *x509bundle.Bundle
}

// LoadCredentials reads a workload's certificate, key and trust bundle. The
// certificate's SPIFFE ID must be in the trust domain, and stays the same
// across reloads.
func LoadCredentials(files pki.Files) (*Credentials, error) {
	c := &Credentials{files: files, interval: DefaultReloadInterval}
	m, err := c.read()
	if err != nil {
		return nil, err
	}
	c.id = m.svid.ID
	c.cur.Store(m)
	c.lastLook.Store(time.Now().UnixNano())
	return c, nil
}

// SetReloadInterval sets how often the files are looked at (tests use a
// short one); DefaultReloadInterval otherwise.
func (c *Credentials) SetReloadInterval(d time.Duration) { c.interval = d }

// SetLogger makes reloads, refused rewrites and expiry logged.
func (c *Credentials) SetLogger(l *slog.Logger) { c.log.Store(l) }

// Files returns the paths the credentials are read from.
func (c *Credentials) Files() pki.Files { return c.files }

// ID returns the workload's SPIFFE ID.
func (c *Credentials) ID() spiffeid.ID { return c.id }

// SVID returns the current X.509-SVID.
func (c *Credentials) SVID() *x509svid.SVID {
	c.refresh(false)
	return c.cur.Load().svid
}

// Bundle returns the current trust bundle.
func (c *Credentials) Bundle() *x509bundle.Bundle {
	c.refresh(false)
	return c.cur.Load().bundle
}

// GetX509SVID implements x509svid.Source with the current SVID.
func (c *Credentials) GetX509SVID() (*x509svid.SVID, error) { return c.SVID(), nil }

// GetX509BundleForTrustDomain implements x509bundle.Source with the current
// trust bundle.
func (c *Credentials) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b := c.Bundle()
	if td != b.TrustDomain() {
		return nil, fmt.Errorf("no trust bundle for trust domain %s", td)
	}
	return b, nil
}

// Check looks at the files and returns an error naming the certificate file,
// its identity and the times when the current certificate is expired or not
// yet valid at now, or when the last rewrite of the files was refused and the
// material in use is no longer what the files hold. Readiness reports it.
func (c *Credentials) Check(now time.Time) error {
	c.refresh(true)
	if err := validity(c.where(), c.cur.Load().svid, now); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadErr
}

func validity(path string, svid *x509svid.SVID, now time.Time) error {
	leaf := svid.Certificates[0]
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("certificate %s (%s) expired at %s; it is %s", path, svid.ID, leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("certificate %s (%s) is not valid before %s; it is %s", path, svid.ID, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Watch looks at the files every reload interval until ctx ends, so that a
// rotation is logged when it happens and an expired or not-yet-valid
// certificate is logged (by file, identity and time) when it becomes so, even
// with no connection being made.
func (c *Credentials) Watch(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			msg := ""
			if err := c.Check(now); err != nil {
				msg = err.Error()
			}
			if msg != last {
				if l := c.log.Load(); l != nil {
					if msg != "" {
						l.Error("credentials not usable", "error", msg)
					} else {
						l.Info("credentials usable again", "certificate", c.where())
					}
				}
				last = msg
			}
		}
	}
}

// refresh reads the files again when the reload interval has passed since
// the last look (or always when force), and swaps in the new material when
// the files changed and the new material is usable.
func (c *Credentials) refresh(force bool) {
	if c.socket != "" {
		return // the Workload API pushes rotations (apiWatcher)
	}
	now := time.Now()
	if !force && now.UnixNano()-c.lastLook.Load() < int64(c.interval) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && now.UnixNano()-c.lastLook.Load() < int64(c.interval) {
		return
	}
	c.lastLook.Store(now.UnixNano())
	old := c.cur.Load()
	cert, key, ca, err := c.readFiles()
	if err == nil && bytes.Equal(cert, old.cert) && bytes.Equal(key, old.key) && bytes.Equal(ca, old.ca) {
		c.reloadErr = nil
		return
	}
	var m *material
	if err == nil {
		m, err = c.parse(cert, key, ca)
	}
	if err == nil && m.svid.ID != c.id {
		err = fmt.Errorf("certificate %s is now for %s, not %s", c.files.Cert, m.svid.ID, c.id)
	}
	l := c.log.Load()
	if err != nil {
		if l != nil && (c.reloadErr == nil || c.reloadErr.Error() != err.Error()) {
			l.Warn("rotated credentials refused; keeping the previous ones", "error", err.Error())
		}
		c.reloadErr = err
		return
	}
	c.reloadErr = nil
	c.cur.Store(m)
	if l != nil {
		leaf := m.svid.Certificates[0]
		l.Info("credentials reloaded", "certificate", c.files.Cert, "identity", m.svid.ID.String(),
			"serial", leaf.SerialNumber.Text(16), "not_before", leaf.NotBefore.UTC(), "not_after", leaf.NotAfter.UTC(),
			"bundle_authorities", len(m.bundle.X509Authorities()))
	}
}

func (c *Credentials) read() (*material, error) {
	cert, key, ca, err := c.readFiles()
	if err != nil {
		return nil, err
	}
	return c.parse(cert, key, ca)
}

func (c *Credentials) readFiles() (cert, key, ca []byte, err error) {
	if cert, err = os.ReadFile(c.files.Cert); err != nil {
		return nil, nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	if key, err = os.ReadFile(c.files.Key); err != nil {
		return nil, nil, nil, fmt.Errorf("read key: %w", err)
	}
	if ca, err = os.ReadFile(c.files.CA); err != nil {
		return nil, nil, nil, fmt.Errorf("read trust bundle: %w", err)
	}
	return cert, key, ca, nil
}

func (c *Credentials) parse(cert, key, ca []byte) (*material, error) {
	svid, err := x509svid.Parse(cert, key)
	if err != nil {
		return nil, fmt.Errorf("load X.509-SVID from %s and %s: %w", c.files.Cert, c.files.Key, err)
	}
	if svid.ID.TrustDomain() != identity.Domain() {
		return nil, fmt.Errorf("certificate %s is for %s, not trust domain %s", c.files.Cert, svid.ID, identity.Domain())
	}
	bundle, err := x509bundle.Parse(identity.Domain(), ca)
	if err != nil {
		return nil, fmt.Errorf("load trust bundle %s: %w", c.files.CA, err)
	}
	return &material{cert: cert, key: key, ca: ca, svid: svid, bundle: bundle}, nil
}
