package rpc

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

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
)

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
func presentUnary(md metadata.MD, check func() string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, withCredential(md, check))
		return handler(ctx, req)
	}
}

// presentStream sets the scope header on every stream.
func presentStream(md metadata.MD, check func() string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		_ = ss.SetHeader(withCredential(md, check))
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
}

// ScopeFromHeader reads the presented scope from response header metadata.
func ScopeFromHeader(md metadata.MD) (PresentedScope, bool) {
	get := func(k string) string {
		if v := md.Get(k); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	p := PresentedScope{Name: get(HeaderScopeName), Version: get(HeaderScopeVersion), Digest: get(HeaderScopeDigest), Credential: get(HeaderCredentialCheck)}
	return p, p.Digest != ""
}
