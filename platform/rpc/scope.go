package rpc

import (
	"context"
	"encoding/json"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/scope"
)

// Header keys with which every server presents its scope manifest on every
// response, the health service's included, so that a client learns the
// digest of the manifest the server enforces the moment it connects. The
// values are authenticated by the server's mTLS certificate.
const (
	HeaderScopeDigest  = "secureaudit-scope-digest"
	HeaderScopeVersion = "secureaudit-scope-version"
	HeaderScopeName    = "secureaudit-scope-name"
	// HeaderCredentialCheck carries the workload's latest credential
	// self-check (SOC 2 CC6.2) as compact JSON: {"outcome": "pass",
	// "violation" or "not-applicable", "summary": "..."}.
	HeaderCredentialCheck = "secureaudit-credential-check"
	// HeaderRefusals carries the calls the server refused since it started
	// (SOC 2 CC7.2) as compact JSON: {"count": N, "recent": [authz.Refusal]}.
	// It is absent while the server has refused nothing, and on responses
	// to callers without a valid certificate.
	HeaderRefusals = "secureaudit-refusals"
)

// Refusals is the value of HeaderRefusals.
type Refusals struct {
	Count  uint64          `json:"count"`
	Recent []authz.Refusal `json:"recent"`
}

// withRefusals adds the guard's refusals to md when the caller is
// authenticated: who was refused, and how, is not told to a caller without a
// valid certificate.
func withRefusals(ctx context.Context, md metadata.MD, guard *authz.Guard) metadata.MD {
	if !guard.Authenticated(ctx) {
		return md
	}
	n, recent := guard.Refusals()
	if n == 0 {
		return md
	}
	data, err := json.Marshal(Refusals{Count: n, Recent: recent})
	if err != nil {
		return md
	}
	md = md.Copy()
	md.Set(HeaderRefusals, string(data))
	return md
}

// scopeHeader returns the header metadata presenting m.
func scopeHeader(m *scope.Manifest) metadata.MD {
	return metadata.Pairs(
		HeaderScopeDigest, m.Digest(),
		HeaderScopeVersion, strconv.Itoa(m.Metadata.Version),
		HeaderScopeName, m.Metadata.Name,
	)
}

// withCredential adds the current credential check to md.
func withCredential(md metadata.MD, check func() string) metadata.MD {
	if check == nil {
		return md
	}
	v := check()
	if v == "" {
		return md
	}
	md = md.Copy()
	md.Set(HeaderCredentialCheck, v)
	return md
}

// presentUnary sets the scope header on every unary response.
func presentUnary(md metadata.MD, check func() string, guard *authz.Guard) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, withRefusals(ctx, withCredential(md, check), guard))
		return handler(ctx, req)
	}
}

// presentStream sets the scope header on every stream.
func presentStream(md metadata.MD, check func() string, guard *authz.Guard) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		_ = ss.SetHeader(withRefusals(ss.Context(), withCredential(md, check), guard))
		return handler(srv, ss)
	}
}

// PresentedScope is a server's scope manifest as it presented it, with its
// latest credential check.
type PresentedScope struct {
	Name       string
	Version    string
	Digest     string
	Credential string
	// Refusals is the server's refusals header, empty when it refused nothing.
	Refusals string
}

// ScopeFromHeader reads the presented scope from response header metadata.
func ScopeFromHeader(md metadata.MD) (PresentedScope, bool) {
	get := func(k string) string {
		if v := md.Get(k); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	p := PresentedScope{Name: get(HeaderScopeName), Version: get(HeaderScopeVersion), Digest: get(HeaderScopeDigest), Credential: get(HeaderCredentialCheck), Refusals: get(HeaderRefusals)}
	return p, p.Digest != ""
}
