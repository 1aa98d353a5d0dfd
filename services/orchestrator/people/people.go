// Package people authenticates the people behind decisions (scope
// approvals today; review decisions and risk acceptances as they come): the
// caller presents an OpenID Connect ID token, issued by Entra ID or any
// configured issuer, and the orchestrator verifies it with go-oidc (issuer,
// audience, expiry, and signature against the keys the issuer publishes) and
// reads the person from its claims. Nobody types their own name. The package
// also holds the separation-of-duties rule: a person never approves what
// they asked for.
package people

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Config names the issuer whose ID tokens are accepted.
type Config struct {
	// Issuer is the issuer URL, exactly as the tokens' iss claim has it
	// (Entra ID: https://login.microsoftonline.com/TENANT_ID/v2.0). Its
	// discovery document is read from Issuer/.well-known/openid-configuration.
	Issuer string
	// Audience is the client ID the tokens must be issued to (aud).
	Audience string
	// CAFile, when set, is the PEM bundle the issuer's certificate is
	// verified with instead of the system roots (a private issuer).
	CAFile string
	// Now, when set, is the clock expiry is checked against.
	Now func() time.Time
}

// Verifier verifies ID tokens of one issuer. The issuer's discovery document
// is fetched on first use (and again after a failure), so that an issuer
// that is briefly unreachable does not stop the orchestrator from starting.
type Verifier struct {
	cfg    Config
	client *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// Refusal is an ID token that was not accepted; its message says why
// without quoting the token.
type Refusal struct{ Reason string }

func (e *Refusal) Error() string { return "ID token refused: " + e.Reason }

// UnreachableError is an issuer whose discovery document could not be read.
type UnreachableError struct {
	Issuer string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("OpenID Connect discovery of %s: %v", e.Issuer, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("OpenID Connect: an issuer URL and an audience (client ID) are both required")
	}
	if !strings.HasPrefix(cfg.Issuer, "https://") {
		return nil, fmt.Errorf("OpenID Connect issuer %q: want an https:// URL", cfg.Issuer)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("OpenID Connect issuer CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OpenID Connect issuer CA %s: no PEM certificate in it", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Verifier{cfg: cfg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// Issuer returns the configured issuer URL.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

func (v *Verifier) idTokenVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.cfg.Issuer)
	if err != nil {
		return nil, &UnreachableError{Issuer: v.cfg.Issuer, Err: err}
	}
	v.verifier = p.Verifier(&oidc.Config{ClientID: v.cfg.Audience, Now: v.cfg.Now})
	return v.verifier, nil
}

// claims are the ID token claims a decision records.
type claims struct {
	OID               string `json:"oid"`
	Name              string `json:"name"`
	Email             string `json:"email"`
	PreferredUsername string `json:"preferred_username"`
}

// Verify checks raw (issuer, audience, expiry, signature against the
// issuer's JWKS) and returns the person it names. A token that is not
// accepted is a *Refusal; failing to reach the issuer is another error.
func (v *Verifier) Verify(ctx context.Context, raw string) (*secureauditv1.Decider, error) {
	iv, err := v.idTokenVerifier(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := iv.Verify(ctx, strings.TrimSpace(raw))
	if err != nil {
		return nil, &Refusal{Reason: reason(err)}
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return nil, &Refusal{Reason: "claims: " + err.Error()}
	}
	if tok.Subject == "" {
		return nil, &Refusal{Reason: "no sub claim"}
	}
	email := c.Email
	if email == "" {
		email = c.PreferredUsername
	}
	return &secureauditv1.Decider{
		Issuer:   tok.Issuer,
		Subject:  clip(tok.Subject, 256),
		ObjectId: clip(c.OID, 256),
		Name:     clip(c.Name, 256),
		Email:    clip(email, 320),
	}, nil
}

// reason turns go-oidc's error into what went wrong.
func reason(err error) string {
	var expired *oidc.TokenExpiredError
	msg := strings.TrimPrefix(err.Error(), "oidc: ")
	switch {
	case errors.As(err, &expired):
		return "expired at " + expired.Expiry.UTC().Format(time.RFC3339)
	case strings.Contains(msg, "different provider"):
		return "wrong issuer: " + msg
	case strings.Contains(msg, "expected audience"):
		return "wrong audience: " + msg
	case strings.Contains(msg, "signature"):
		return "bad signature or unknown signing key: " + msg
	case strings.Contains(msg, "malformed"):
		return "not a JWT: " + msg
	}
	return msg
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// Key identifies a person across decisions: the issuer and Entra ID's object
// ID when the token has one (the same user in every application), else the
// subject.
func Key(d *secureauditv1.Decider) string {
	if d.GetObjectId() != "" {
		return d.GetIssuer() + "#oid:" + d.GetObjectId()
	}
	return d.GetIssuer() + "#sub:" + d.GetSubject()
}

// Same reports whether two deciders are the same person.
func Same(a, b *secureauditv1.Decider) bool {
	if a == nil || b == nil {
		return false
	}
	if a.GetIssuer() != b.GetIssuer() {
		return false
	}
	if a.GetObjectId() != "" && b.GetObjectId() != "" {
		return a.GetObjectId() == b.GetObjectId()
	}
	return a.GetSubject() == b.GetSubject()
}

// Display names a person for people: name and e-mail address, else the
// subject.
func Display(d *secureauditv1.Decider) string {
	switch {
	case d.GetName() != "" && d.GetEmail() != "":
		return d.GetName() + " <" + d.GetEmail() + ">"
	case d.GetName() != "":
		return d.GetName()
	case d.GetEmail() != "":
		return d.GetEmail()
	}
	return "sub " + d.GetSubject()
}

// DutiesError is a decision refused by separation of duties.
type DutiesError struct{ Requester, Decision string }

func (e *DutiesError) Error() string {
	return fmt.Sprintf("separation of duties: %s requested this and cannot also %s it; another person must", e.Requester, e.Decision)
}

// SeparateDuties refuses a decision (such as "approve") by the person who
// requested it.
func SeparateDuties(requester, decider *secureauditv1.Decider, decision string) error {
	if Same(requester, decider) {
		return &DutiesError{Requester: Display(requester), Decision: decision}
	}
	return nil
}
