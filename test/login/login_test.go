// Package login_test signs in through the CLI's device login (cli/login)
// against a local HTTPS issuer and verifies the token with the
// orchestrator's verifier: the CLI module may not import the orchestrator's
// people package, this test module may.
package login_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"secureaudit.dev/cli/login"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/people/peopletest"
)

const loginClient = "secureaudit-cli-test"

// TestDeviceLogin signs in through the real golang.org/x/oauth2 device
// grant against a local HTTPS issuer: the first poll is pending, the next
// gets the ID token, which the orchestrator's verifier (go-oidc) accepts as
// the person who signed in. The token itself is never written to the
// prompt.
func TestDeviceLogin(t *testing.T) {
	iss := peopletest.New(t)
	iss.ApproveDevice(loginClient, iss.Valid(loginClient, "alice", "Alice Example"))
	var prompt bytes.Buffer
	l := login.Device{Issuer: iss.URL(), ClientID: loginClient, CAFile: iss.CAFile}
	raw, err := l.IDToken(context.Background(), &prompt)
	if err != nil {
		t.Fatal(err)
	}
	if iss.DevicePolls() < 2 {
		t.Errorf("%d token requests: the pending answer was not polled past", iss.DevicePolls())
	}
	if !strings.Contains(prompt.String(), "WDJB-MJHT") || !strings.Contains(prompt.String(), iss.URL()+"/device") {
		t.Errorf("prompt %q does not give the address and the code", prompt.String())
	}
	if strings.Contains(prompt.String(), raw) {
		t.Error("the ID token was written to the prompt")
	}
	v, err := people.New(people.Config{Issuer: iss.URL(), Audience: loginClient, CAFile: iss.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("the orchestrator's verifier refused the token: %v", err)
	}
	if d.GetName() != "Alice Example" || d.GetSubject() != "alice" {
		t.Errorf("signed in as %v, want Alice Example (alice)", d)
	}
}

// TestDeviceLoginRefusals: every way the login cannot give a token is an
// error naming what is wrong.
func TestDeviceLoginRefusals(t *testing.T) {
	iss := peopletest.New(t)
	other := peopletest.New(t)
	other.ApproveDevice("another-client", other.Valid("another-client", "bob", "Bob"))
	for _, tc := range []struct {
		name  string
		login login.Device
		want  string
	}{
		{"nobody signed in", login.Device{Issuer: iss.URL(), ClientID: loginClient, CAFile: iss.CAFile}, "access_denied"},
		{"signed in to another client", login.Device{Issuer: other.URL(), ClientID: loginClient, CAFile: other.CAFile}, "access_denied"},
		{"no issuer", login.Device{ClientID: loginClient}, "--oidc-issuer"},
		{"no client", login.Device{Issuer: iss.URL()}, "--oidc-client-id"},
		{"plain HTTP", login.Device{Issuer: "http://issuer.example", ClientID: loginClient}, "https://"},
		{"another issuer's document", login.Device{Issuer: iss.URL() + "/", ClientID: loginClient, CAFile: iss.CAFile}, "names the issuer"},
		{"issuer's certificate not trusted", login.Device{Issuer: iss.URL(), ClientID: loginClient}, "certificate"},
		{"CA file missing", login.Device{Issuer: iss.URL(), ClientID: loginClient, CAFile: "/nonexistent/ca.pem"}, "--oidc-ca-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prompt bytes.Buffer
			raw, err := tc.login.IDToken(context.Background(), &prompt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got token %q, error %v; want an error naming %q", raw, err, tc.want)
			}
		})
	}
}
