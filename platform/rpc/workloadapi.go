package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/platform/identity"
)

// EnvSPIFFESocket is the standard variable naming the SPIFFE Workload API
// socket (unix:///run/spire/agent/public/api.sock).
const EnvSPIFFESocket = "SPIFFE_ENDPOINT_SOCKET"

// WorkloadAPICredentials takes the workload's X.509-SVID and trust bundle
// from the SPIFFE Workload API at addr (a SPIRE agent's socket,
// unix:///path or unix:/path), waiting up to ctx's deadline for the first
// answer, and follows every rotation the API streams until Close. The first
// SVID (the API's default) is used; its SPIFFE ID must be in the configured
// trust domain and stays the same across rotations (a rotation to another
// ID, or without a bundle of the trust domain, is refused and reported by
// Check, the previous material staying in use).
func WorkloadAPICredentials(ctx context.Context, addr string) (*Credentials, error) {
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("SPIFFE Workload API at %s: %w", addr, err)
	}
	c := &Credentials{socket: addr, interval: DefaultReloadInterval}
	first, err := client.FetchX509Context(ctx)
	if err == nil {
		var m *material
		if m, err = c.fromContext(first); err == nil {
			c.id = m.svid.ID
			c.cur.Store(m)
		}
	}
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("SPIFFE Workload API at %s: %w", addr, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.close = func() error {
		cancel()
		<-done
		return client.Close()
	}
	go func() {
		defer close(done)
		_ = client.WatchX509Context(wctx, apiWatcher{c})
	}()
	return c, nil
}

// fromContext takes the default SVID and the bundle of its trust domain.
func (c *Credentials) fromContext(x *workloadapi.X509Context) (*material, error) {
	if len(x.SVIDs) == 0 {
		return nil, errors.New("the Workload API sent no X.509-SVID")
	}
	svid := x.DefaultSVID()
	if svid.ID.TrustDomain() != identity.Domain() {
		return nil, fmt.Errorf("the Workload API's SVID is for %s, not trust domain %s", svid.ID, identity.Domain())
	}
	if !c.id.IsZero() && svid.ID != c.id {
		return nil, fmt.Errorf("the Workload API's SVID is now for %s, not %s", svid.ID, c.id)
	}
	bundle, ok := x.Bundles.Get(identity.Domain())
	if !ok {
		return nil, fmt.Errorf("the Workload API sent no trust bundle for %s", identity.Domain())
	}
	return &material{svid: svid, bundle: bundle}, nil
}

// apiWatcher swaps in each rotation the Workload API streams.
type apiWatcher struct{ c *Credentials }

func (w apiWatcher) OnX509ContextUpdate(x *workloadapi.X509Context) {
	c := w.c
	m, err := c.fromContext(x)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.log.Load()
	if err != nil {
		if l != nil {
			l.Warn("rotated credentials refused; keeping the previous ones", "error", err.Error())
		}
		c.reloadErr = err
		return
	}
	c.reloadErr = nil
	c.cur.Store(m)
	if l != nil {
		leaf := m.svid.Certificates[0]
		l.Info("credentials reloaded", "certificate", c.where(), "identity", m.svid.ID.String(),
			"serial", leaf.SerialNumber.Text(16), "not_before", leaf.NotBefore.UTC(), "not_after", leaf.NotAfter.UTC(),
			"bundle_authorities", len(m.bundle.X509Authorities()))
	}
}

func (w apiWatcher) OnX509ContextWatchError(err error) {
	if l := w.c.log.Load(); l != nil && !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
		// The client reconnects with backoff; the material in use stays.
		l.Warn("SPIFFE Workload API stream failed; reconnecting", "socket", w.c.socket, "error", err.Error())
	}
}

// where names the source of the certificate in messages: its file, or the
// Workload API socket.
func (c *Credentials) where() string {
	if c.socket != "" {
		return "from the SPIFFE Workload API at " + c.socket
	}
	return c.files.Cert
}

// Close stops following the Workload API; a no-op for files.
func (c *Credentials) Close() error {
	if c.close == nil {
		return nil
	}
	return c.close()
}

// WorkloadAPITimeout bounds the wait for the Workload API's first answer at
// start (a SPIRE agent attests the workload before it answers).
const WorkloadAPITimeout = 30 * time.Second
