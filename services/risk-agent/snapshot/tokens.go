package snapshot

import (
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TokenKind is how a pod comes to hold a ServiceAccount token.
type TokenKind int

// The ways a pod holds a token.
const (
	// TokenAutomount: the kubelet mounts the pod's ServiceAccount token
	// because automountServiceAccountToken is on (pod, then ServiceAccount,
	// default yes).
	TokenAutomount TokenKind = iota + 1
	// TokenProjected: a projected volume has a serviceAccountToken source,
	// whatever automount says.
	TokenProjected
	// TokenLegacySecret: the pod mounts a Secret by name whose name is that
	// of a legacy ServiceAccount token Secret (NAME-token or NAME-token-xxxxx
	// of a ServiceAccount of the namespace). The snapshot never reads
	// Secrets, so its type is an assumption.
	TokenLegacySecret
)

// Token is one token a pod holds.
type Token struct {
	Kind TokenKind
	// ServiceAccount is the name of the ServiceAccount (in the pod's
	// namespace) whose token it is.
	ServiceAccount string
	// Volume, Audience and Path describe a projected token.
	Volume, Audience, Path string
	// Secret names the mounted Secret of a legacy token.
	Secret string
}

// Text says how the token arrives, for evidence.
func (t Token) Text() string {
	switch t.Kind {
	case TokenProjected:
		aud := "the API server's audience"
		if t.Audience != "" {
			aud = "audience " + t.Audience
		}
		return "a projected serviceAccountToken in volume " + t.Volume + " (" + aud + ", path " + t.Path + ")"
	case TokenLegacySecret:
		return "Secret " + t.Secret + " mounted by name, a legacy token Secret of ServiceAccount " + t.ServiceAccount + " by its name"
	}
	return "automount (automountServiceAccountToken on)"
}

// Assumption is what must hold for the token to work against the API
// server that the snapshot cannot show, or "" when nothing needs assuming.
func (t Token) Assumption() string {
	switch t.Kind {
	case TokenProjected:
		if t.Audience != "" {
			return "the API server accepts tokens of audience " + t.Audience
		}
	case TokenLegacySecret:
		return "Secret " + t.Secret + " is a legacy token Secret of ServiceAccount " + t.ServiceAccount + " (the audit never reads Secrets)"
	}
	return ""
}

// Automounts reports whether a workload's ServiceAccount token is
// automounted: the pod's setting wins, then the ServiceAccount's, and the
// default is yes.
func (s *Snapshot) Automounts(w *secureauditv1.Workload) bool {
	if w.AutomountToken != nil {
		return w.GetAutomountToken()
	}
	if sa, ok := s.ServiceAccount(w.GetMeta().GetNamespace(), w.GetServiceAccount()); ok && sa.AutomountToken != nil {
		return sa.GetAutomountToken()
	}
	return true
}

// Tokens returns every token a workload holds: the automounted one, each
// projected serviceAccountToken source (any audience), and each mounted
// Secret named as a legacy token Secret of a ServiceAccount of its
// namespace (the pod's own or another's).
func (s *Snapshot) Tokens(w *secureauditv1.Workload) []Token { return s.AppendTokens(nil, w) }

// AppendTokens appends the tokens Tokens returns to out, so that a caller
// looping over workloads can reuse one buffer.
func (s *Snapshot) AppendTokens(out []Token, w *secureauditv1.Workload) []Token {
	sa := w.GetServiceAccount()
	if s.Automounts(w) {
		out = append(out, Token{Kind: TokenAutomount, ServiceAccount: sa})
	}
	for _, p := range w.GetProjectedTokens() {
		out = append(out, Token{Kind: TokenProjected, ServiceAccount: sa, Volume: p.GetVolume(), Audience: p.GetAudience(), Path: p.GetPath()})
	}
	for _, name := range w.GetSecretVolumes() {
		if owner, ok := s.legacyTokenOwner(w.GetMeta().GetNamespace(), sa, name); ok {
			out = append(out, Token{Kind: TokenLegacySecret, ServiceAccount: owner, Secret: name})
		}
	}
	return out
}

// HoldsOwnToken reports whether a workload holds its own ServiceAccount's
// token in any way the snapshot proves (automount or projection).
func (s *Snapshot) HoldsOwnToken(w *secureauditv1.Workload) bool {
	return s.Automounts(w) || len(w.GetProjectedTokens()) > 0
}

// legacyTokenOwner returns the ServiceAccount a Secret's name marks as its
// legacy token Secret's owner: NAME-token or NAME-token-SUFFIX (the token
// controller's naming), where NAME is the pod's ServiceAccount or a
// ServiceAccount of the namespace.
func (s *Snapshot) legacyTokenOwner(ns, own, secret string) (string, bool) {
	name, ok := strings.CutSuffix(secret, "-token")
	if !ok {
		i := strings.LastIndex(secret, "-token-")
		if i <= 0 || strings.Contains(secret[i+len("-token-"):], "-") || i+len("-token-") == len(secret) {
			return "", false
		}
		name = secret[:i]
	}
	if name == own {
		return name, true
	}
	if _, ok := s.ServiceAccount(ns, name); ok {
		return name, true
	}
	return "", false
}
