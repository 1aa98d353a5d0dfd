// Package peopletest runs a local OpenID Connect issuer over HTTPS for
// tests: a discovery document and a JWKS with an RSA key generated per
// issuer, and ID tokens signed with go-jose, so that verification goes
// through the real go-oidc library.
package peopletest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a local OpenID Connect issuer over HTTPS: a discovery document
// and a JWKS with the keys it signs with, generated for the test.
type Issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
	// CAFile is the PEM certificate the issuer serves HTTPS with.
	CAFile string
}

// New starts an issuer that stops when the test ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{key: key, kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.URL(),
			"authorization_endpoint":                iss.URL() + "/authorize",
			"token_endpoint":                        iss.URL() + "/token",
			"jwks_uri":                              iss.URL() + "/keys",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	iss.srv = httptest.NewTLSServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.CAFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(iss.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return iss
}

// URL is the issuer URL (the iss claim).
func (i *Issuer) URL() string { return i.srv.URL }

// Token is one ID token's claims.
type Token struct {
	Issuer   string
	Audience string
	Subject  string
	OID      string
	Name     string
	Email    string
	Expiry   time.Time
	// Key and KeyID sign it; the issuer's key and kid when nil and empty.
	Key   *rsa.PrivateKey
	KeyID string
}

// Sign returns the token as a compact JWT signed with RS256.
func (i *Issuer) Sign(t testing.TB, tok Token) string {
	t.Helper()
	key, kid := tok.Key, tok.KeyID
	if key == nil {
		key = i.key
	}
	if kid == "" {
		kid = i.kid
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	std := jwt.Claims{Issuer: tok.Issuer, Subject: tok.Subject, Audience: jwt.Audience{tok.Audience}, IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), Expiry: jwt.NewNumericDate(tok.Expiry)}
	extra := map[string]any{"oid": tok.OID, "name": tok.Name, "email": tok.Email}
	raw, err := jwt.Signed(signer).Claims(std).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Valid returns the claims of a valid token for subject.
func (i *Issuer) Valid(audience, subject, name string) Token {
	return Token{Issuer: i.URL(), Audience: audience, Subject: subject, OID: "oid-" + subject, Name: name, Email: subject + "@example.com", Expiry: time.Now().Add(time.Hour)}
}
