// Package authz authenticates the caller of every RPC from its mTLS client
// certificate (an X.509-SVID verified against the trust bundle) and authorizes
// it per full method name from the service's scope manifest. Anything not
// listed is denied.
package authz

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/scope"
)

// HealthPrefix is exempt from authentication and authorization so that
// kubelet and load balancers can probe without a certificate.
const HealthPrefix = "/grpc.health.v1.Health/"

// Log attribute keys.
const (
	attrMethod = "method"
	attrCaller = "caller"
	attrReason = "reason"
	// attrAddress is the host an unauthenticated call came from.
	attrAddress = "address"
)

// Policy is the table of allowed callers per full method name: the callers
// the scope manifest names, and, for a method that names a role, the callers
// the caller policy gives that role (or that method).
type Policy struct {
	allowed map[string]map[spiffeid.ID]bool
	roles   map[string]Role
	callers *Callers
}

// NewPolicy builds the table from a scope manifest and, for a public API
// whose methods name roles, the caller policy (nil grants no role). A
// method naming an unknown role, or a caller policy naming a method the
// manifest does not list, is an error.
func NewPolicy(m *scope.Manifest, callers *Callers) (*Policy, error) {
	p := &Policy{allowed: map[string]map[spiffeid.ID]bool{}, roles: map[string]Role{}, callers: callers}
	public := map[string]bool{}
	for _, meth := range m.Spec.Methods {
		allowed := map[spiffeid.ID]bool{}
		for _, c := range meth.Callers {
			id, err := identity.Parse(c)
			if err != nil {
				return nil, fmt.Errorf("method %s: %w", meth.Name, err)
			}
			allowed[id] = true
		}
		p.allowed[meth.Name] = allowed
		if meth.Role != "" {
			if !knownRole(meth.Role) {
				return nil, fmt.Errorf("scope manifest %s: method %s: unknown role %q (want %s)", m.Metadata.Name, meth.Name, meth.Role, roleNames())
			}
			p.roles[meth.Name] = Role(meth.Role)
			public[meth.Name] = true
		}
	}
	if err := callers.check(m.Metadata.Name, public); err != nil {
		return nil, err
	}
	return p, nil
}

// Allowed reports whether caller may call method. Unknown methods are denied.
func (p *Policy) Allowed(method string, caller spiffeid.ID) bool {
	allowed, ok := p.allowed[method]
	if !ok {
		return false
	}
	if allowed[caller] {
		return true
	}
	if role, ok := p.roles[method]; ok && p.callers.has(caller, role) {
		return true
	}
	return p.callers.hasMethod(caller, method)
}

// Covers returns an error naming every method of the given services that has
// no policy entry, so that a server refuses to start rather than serve a
// method nobody reviewed.
func (p *Policy) Covers(services map[string]grpc.ServiceInfo) error {
	var missing []string
	for name, info := range services {
		if strings.HasPrefix("/"+name+"/", HealthPrefix) {
			continue
		}
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			if _, ok := p.allowed[full]; !ok {
				missing = append(missing, full)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("no authorization policy for %s", strings.Join(missing, ", "))
	}
	return nil
}

// Guard is the authentication and authorization interceptor.
type Guard struct {
	policy  *Policy
	bundle  x509bundle.Source
	log     *slog.Logger
	observe func(ctx context.Context, method, caller string, code codes.Code)

	mu      sync.Mutex
	refused uint64
	// Refusals aggregated per source: denials of authenticated identities
	// apart from unauthenticated calls, so that no number of the latter
	// can push a denial of a valid identity out.
	denied map[refusalKey]*Refusal
	anon   map[refusalKey]*Refusal
}

// Bounds of the aggregated refusals a guard keeps. Past them, refusals
// from further sources are counted in one entry per table ("other
// identities", "other addresses"), so counts stay exact.
const (
	maxDeniedSources = 64
	maxAnonSources   = 16
	maxReason        = 256
	// OtherSources names the entry counting refusals past the bounds.
	OtherSources = "(other sources)"
)

type refusalKey struct{ source, method, code string }

// Refusal is the calls refused from one source (a verified identity, or the
// address of an unauthenticated caller) to one method with one outcome.
type Refusal struct {
	// Time is when the latest of them was refused; First the earliest.
	Time  time.Time `json:"time"`
	First time.Time `json:"first,omitempty"`
	// Count is how many calls were refused; 0 in headers of versions that
	// sent one entry per call, meaning 1.
	Count  uint64 `json:"count,omitempty"`
	Method string `json:"method"`
	// Caller is the verified SPIFFE ID; empty when the caller was not
	// authenticated.
	Caller string `json:"caller,omitempty"`
	// Address is the network address (host) of an unauthenticated caller.
	Address string `json:"address,omitempty"`
	// Code is PermissionDenied or Unauthenticated.
	Code string `json:"code"`
	// Reason says why an unauthenticated caller was refused (the first
	// reason seen from that source).
	Reason string `json:"reason,omitempty"`
}

// Key identifies the source, method and outcome a Refusal aggregates.
func (r Refusal) Key() string {
	return r.Code + " " + r.Caller + " " + r.Address + " " + r.Method
}

// Refusals returns how many calls the guard has refused since it started
// and the refusals aggregated per source, method and outcome, earliest
// first, so that a server can present them to the orchestrator (SOC 2
// CC7.2). The counts of the entries add up to the total.
func (g *Guard) Refusals() (uint64, []Refusal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Refusal, 0, len(g.denied)+len(g.anon))
	for _, m := range []map[refusalKey]*Refusal{g.denied, g.anon} {
		for _, r := range m {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Refusal) int {
		return cmp.Or(a.First.Compare(b.First), cmp.Compare(a.Key(), b.Key()))
	})
	return g.refused, out
}

func (g *Guard) refuse(r Refusal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refused++
	table, limit, source := &g.anon, maxAnonSources, r.Address
	if r.Caller != "" {
		table, limit, source = &g.denied, maxDeniedSources, r.Caller
	}
	if *table == nil {
		*table = map[refusalKey]*Refusal{}
	}
	key := refusalKey{source: source, method: r.Method, code: r.Code}
	cur, ok := (*table)[key]
	if !ok && len(*table) >= limit-1 {
		key = refusalKey{source: OtherSources, method: OtherSources, code: r.Code}
		cur, ok = (*table)[key]
		r.Method, r.Reason = OtherSources, ""
		if r.Caller != "" {
			r.Caller = OtherSources
		} else {
			r.Address = OtherSources
		}
	}
	if !ok {
		if len(r.Reason) > maxReason {
			r.Reason = r.Reason[:maxReason]
		}
		r.First = r.Time
		cur = &r
		(*table)[key] = cur
	}
	cur.Count++
	cur.Time = r.Time
}

// Observe makes the guard report every decision: the method, the caller's
// SPIFFE ID (empty when unauthenticated) and OK, PermissionDenied or
// Unauthenticated. It is called before the handler runs and must not block.
func (g *Guard) Observe(fn func(ctx context.Context, method, caller string, code codes.Code)) {
	g.observe = fn
}

// NewGuard returns a Guard that verifies callers against bundle.
func NewGuard(policy *Policy, bundle x509bundle.Source, log *slog.Logger) *Guard {
	return &Guard{policy: policy, bundle: bundle, log: log}
}

// Unary returns the unary server interceptor.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.check(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor.
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := g.check(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

func (g *Guard) check(ctx context.Context, method string) (context.Context, error) {
	if strings.HasPrefix(method, HealthPrefix) {
		return ctx, nil
	}
	caller, err := g.authenticate(ctx)
	if err != nil {
		addr := peerHost(ctx)
		g.log.WarnContext(ctx, "unauthenticated call", attrMethod, method, attrReason, err.Error(), attrAddress, addr)
		g.refuse(Refusal{Time: time.Now().UTC(), Method: method, Address: addr, Code: codes.Unauthenticated.String(), Reason: err.Error()})
		if g.observe != nil {
			g.observe(ctx, method, "", codes.Unauthenticated)
		}
		return nil, status.Error(codes.Unauthenticated, "a valid client certificate from the SecureAudit trust domain is required")
	}
	if !g.policy.Allowed(method, caller) {
		g.log.WarnContext(ctx, "denied call", attrMethod, method, attrCaller, caller.String())
		g.refuse(Refusal{Time: time.Now().UTC(), Method: method, Caller: caller.String(), Code: codes.PermissionDenied.String()})
		if g.observe != nil {
			g.observe(ctx, method, caller.String(), codes.PermissionDenied)
		}
		return nil, status.Errorf(codes.PermissionDenied, "%s may not call %s", caller, method)
	}
	if g.observe != nil {
		g.observe(ctx, method, caller.String(), codes.OK)
	}
	return identity.WithCaller(ctx, caller), nil
}

// peerHost returns the host of the caller's address, without the port (a
// new connection's port would make every call a new source).
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// Authenticated reports whether the caller of the RPC being served presents
// a valid certificate of the trust domain.
func (g *Guard) Authenticated(ctx context.Context) bool {
	_, err := g.authenticate(ctx)
	return err == nil
}

// authenticate verifies the client's certificate chain against the trust
// bundle and returns its SPIFFE ID. The TLS handshake has already proved the
// client holds the certificate's private key.
func (g *Guard) authenticate(ctx context.Context) (spiffeid.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("no peer")
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("connection is not TLS")
	}
	certs := tlsInfo.State.PeerCertificates
	if len(certs) == 0 {
		return spiffeid.ID{}, fmt.Errorf("no client certificate")
	}
	id, _, err := x509svid.Verify(certs, g.bundle)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("verify client certificate: %w", err)
	}
	return id, nil
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
