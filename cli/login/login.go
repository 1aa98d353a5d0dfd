// Package login signs a person in at an OpenID Connect issuer for the CLI's
// decisions: the OAuth 2.0 device authorization grant (RFC 8628).
package login

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Device signs a person in with the OAuth 2.0 device authorization
// grant (RFC 8628) at an OpenID Connect issuer (Entra ID:
// https://login.microsoftonline.com/TENANT/v2.0) and returns the ID token the
// issuer answers with. The person opens the verification address on any
// device and enters the code; the CLI polls the token endpoint until they
// have. The token is handed to the orchestrator, which verifies it; it is
// never printed, logged or stored.
type Device struct {
	// Issuer is the issuer URL, exactly as its discovery document names it.
	Issuer string
	// ClientID is the public client signed in to: the ID token's audience.
	ClientID string
	// CAFile holds PEM certificates trusted for the issuer besides the
	// system's, for a private issuer; "" trusts the system's only.
	CAFile string
}

// Environment variables the CLI's device login flags default to.
const (
	EnvIssuer   = "SECUREAUDIT_OIDC_ISSUER"
	EnvClientID = "SECUREAUDIT_OIDC_CLIENT_ID"
	EnvCAFile   = "SECUREAUDIT_OIDC_CA_FILE"
)

// issuerMetadata is the part of the discovery document the login needs.
type issuerMetadata struct {
	Issuer                      string `json:"issuer"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
}

// IDToken runs the login, telling the person what to do on prompt, and
// returns the ID token.
func (l Device) IDToken(ctx context.Context, prompt io.Writer) (string, error) {
	if l.Issuer == "" || l.ClientID == "" {
		return "", fmt.Errorf("--device-login needs --oidc-issuer and --oidc-client-id (or $%s and $%s)", EnvIssuer, EnvClientID)
	}
	if err := httpsURL("--oidc-issuer", l.Issuer); err != nil {
		return "", err
	}
	hc, err := issuerClient(l.CAFile)
	if err != nil {
		return "", err
	}
	meta, err := discover(ctx, hc, l.Issuer)
	if err != nil {
		return "", err
	}
	cfg := oauth2.Config{
		ClientID: l.ClientID,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: meta.DeviceAuthorizationEndpoint,
			TokenURL:      meta.TokenEndpoint,
			AuthStyle:     oauth2.AuthStyleInParams, // a public client: no secret
		},
		Scopes: []string{"openid", "profile", "email"},
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return "", fmt.Errorf("device login at %s: %w", l.Issuer, err)
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(prompt, "To sign in, open %s (or open %s and enter the code %s).\n", da.VerificationURIComplete, da.VerificationURI, da.UserCode)
	} else {
		fmt.Fprintf(prompt, "To sign in, open %s and enter the code %s.\n", da.VerificationURI, da.UserCode)
	}
	if !da.Expiry.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, da.Expiry)
		defer cancel()
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("device login at %s: the code expired before anyone signed in", l.Issuer)
		}
		return "", fmt.Errorf("device login at %s: %w", l.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", fmt.Errorf("device login at %s: the issuer returned no ID token (the openid scope was asked for; is the client %s allowed it?)", l.Issuer, l.ClientID)
	}
	fmt.Fprintln(prompt, "Signed in.")
	return raw, nil
}

// discover reads the issuer's discovery document and checks that it names
// the issuer asked for and offers the device grant over HTTPS.
func discover(ctx context.Context, hc *http.Client, issuer string) (*issuerMetadata, error) {
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, fmt.Errorf("--oidc-issuer %s: %w", issuer, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery document of %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery document %s: HTTP %d", where, resp.StatusCode)
	}
	var meta issuerMetadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil {
		return nil, fmt.Errorf("discovery document %s: %w", where, err)
	}
	if meta.Issuer != issuer {
		return nil, fmt.Errorf("discovery document %s names the issuer %q, not %q", where, meta.Issuer, issuer)
	}
	if meta.DeviceAuthorizationEndpoint == "" {
		return nil, fmt.Errorf("issuer %s offers no device login (its discovery document has no device_authorization_endpoint); use --id-token-file", issuer)
	}
	for name, u := range map[string]string{"device_authorization_endpoint": meta.DeviceAuthorizationEndpoint, "token_endpoint": meta.TokenEndpoint} {
		if err := httpsURL("the issuer's "+name, u); err != nil {
			return nil, err
		}
	}
	return &meta, nil
}

func httpsURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%s %q: want an https:// URL", what, raw)
	}
	return nil
}

// issuerClient trusts the system's roots and, when given, the certificates
// of caFile.
func issuerClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-ca-file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--oidc-ca-file %s: no PEM certificate in it", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}
