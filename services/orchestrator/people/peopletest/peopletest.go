// Package peopletest runs a local OpenID Connect issuer over HTTPS for
// tests: a discovery document and a JWKS with an RSA key generated per
// issuer, and ID tokens signed with go-jose, so that verification goes
// through the real go-oidc library. It also offers the OAuth 2.0 device
// authorization grant (RFC 8628), so that the CLI's device login runs
// through the real golang.org/x/oauth2 client.
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
	"sync"
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

	mu       sync.Mutex
	approver *Token // who signs in at the verification URI; nil: nobody yet
	clientID string // the device login's client; its tokens' audience
	polls    int    // token requests for the device code so far
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
			"device_authorization_endpoint":         iss.URL() + "/devicecode",
			"grant_types_supported":                 []string{"urn:ietf:params:oauth:grant-type:device_code"},
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
	mux.HandleFunc("POST /devicecode", iss.deviceCode)
	mux.HandleFunc("POST /token", iss.token)
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
	raw, err := i.sign(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (i *Issuer) sign(tok Token) (string, error) {
	key, kid := tok.Key, tok.KeyID
	if key == nil {
		key = i.key
	}
	if kid == "" {
		kid = i.kid
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	now := time.Now()
	std := jwt.Claims{Issuer: tok.Issuer, Subject: tok.Subject, Audience: jwt.Audience{tok.Audience}, IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), Expiry: jwt.NewNumericDate(tok.Expiry)}
	extra := map[string]any{"oid": tok.OID, "name": tok.Name, "email": tok.Email}
	return jwt.Signed(signer).Claims(std).Claims(extra).Serialize()
}

// Valid returns the claims of a valid token for subject.
func (i *Issuer) Valid(audience, subject, name string) Token {
	return Token{Issuer: i.URL(), Audience: audience, Subject: subject, OID: "oid-" + subject, Name: name, Email: subject + "@example.com", Expiry: time.Now().Add(time.Hour)}
}

// deviceCodeValue is the one device code the issuer hands out.
const deviceCodeValue = "device-code-1"

// ApproveDevice makes tok's person the one who signs in at the
// verification URI for the device login of clientID (the audience of the
// ID token the login gets). Until it is called, a device login is pending
// and then denied.
func (i *Issuer) ApproveDevice(clientID string, tok Token) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.clientID, i.approver = clientID, &tok
}

// DevicePolls is how many token requests the device login made.
func (i *Issuer) DevicePolls() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.polls
}

func (i *Issuer) deviceCode(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code":      deviceCodeValue,
		"user_code":        "WDJB-MJHT",
		"verification_uri": i.URL() + "/device",
		"expires_in":       300,
		"interval":         1,
	})
}

// token answers the device code grant: the first request is pending (the
// person has not signed in yet), later ones get the approver's ID token,
// or access_denied when nobody approved or the client is another.
func (i *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	if r.PostForm.Get("device_code") != deviceCodeValue {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	i.mu.Lock()
	i.polls++
	polls, approver, clientID := i.polls, i.approver, i.clientID
	i.mu.Unlock()
	switch {
	case polls == 1:
		oauthError(w, http.StatusBadRequest, "authorization_pending")
		return
	case approver == nil || r.PostForm.Get("client_id") != clientID:
		oauthError(w, http.StatusBadRequest, "access_denied")
		return
	}
	tok := *approver
	tok.Audience = clientID
	raw, err := i.sign(tok)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": "opaque-access-token",
		"token_type":   "Bearer",
		"expires_in":   3600,
		"id_token":     raw,
	})
}

func oauthError(w http.ResponseWriter, code int, name string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": name})
}
