package people_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/people/peopletest"
)

const audience = "secureaudit-test-client"

// TestVerify goes through the real go-oidc library against a local issuer
// over HTTPS: a valid token names the person; every other one is refused
// saying why.
func TestVerify(t *testing.T) {
	iss := peopletest.New(t)
	v, err := people.New(people.Config{Issuer: iss.URL(), Audience: audience, CAFile: iss.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	got, err := v.Verify(ctx, iss.Sign(t, iss.Valid(audience, "alice", "Alice Admin")))
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	want := &secureauditv1.Decider{Issuer: iss.URL(), Subject: "alice", ObjectId: "oid-alice", Name: "Alice Admin", Email: "alice@example.com"}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tok  func() string
		want string
	}{
		{"expired", func() string {
			tok := iss.Valid(audience, "alice", "Alice")
			tok.Expiry = time.Now().Add(-time.Minute)
			return iss.Sign(t, tok)
		}, "expired at"},
		{"wrong audience", func() string { return iss.Sign(t, iss.Valid("another-app", "alice", "Alice")) }, "wrong audience"},
		{"wrong issuer", func() string {
			tok := iss.Valid(audience, "alice", "Alice")
			tok.Issuer = "https://login.example.net/tenant/v2.0"
			return iss.Sign(t, tok)
		}, "wrong issuer"},
		{"bad signature", func() string {
			tok := iss.Valid(audience, "alice", "Alice")
			tok.Key = other // signed with another key under the issuer's kid
			return iss.Sign(t, tok)
		}, "bad signature"},
		{"unknown key", func() string {
			tok := iss.Valid(audience, "alice", "Alice")
			tok.Key, tok.KeyID = other, "not-published"
			return iss.Sign(t, tok)
		}, "bad signature or unknown signing key"},
		{"tampered payload", func() string {
			parts := strings.Split(iss.Sign(t, iss.Valid(audience, "alice", "Alice")), ".")
			bob := strings.Split(iss.Sign(t, iss.Valid(audience, "bob", "Bob")), ".")
			return parts[0] + "." + bob[1] + "." + parts[2]
		}, "bad signature"},
		{"not a token", func() string { return "name-typed-on-the-command-line" }, "not a JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tc.tok())
			var refusal *people.Refusal
			if !errors.As(err, &refusal) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestVerifyUntrustedIssuer: the issuer's certificate must chain to the
// configured CA (here: the system roots, which do not hold the test CA).
func TestVerifyUntrustedIssuer(t *testing.T) {
	iss := peopletest.New(t)
	v, err := people.New(people.Config{Issuer: iss.URL(), Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), iss.Sign(t, iss.Valid(audience, "alice", "Alice")))
	var refusal *people.Refusal
	if err == nil || errors.As(err, &refusal) || !strings.Contains(err.Error(), "discovery") {
		t.Errorf("err = %v, want a discovery failure (certificate not trusted)", err)
	}
}

func TestNewRefusesPlainHTTP(t *testing.T) {
	if _, err := people.New(people.Config{Issuer: "http://issuer.example", Audience: audience}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("err = %v, want an https requirement", err)
	}
	if _, err := people.New(people.Config{Issuer: "https://issuer.example"}); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("err = %v, want the audience required", err)
	}
}

func TestSeparateDuties(t *testing.T) {
	alice := &secureauditv1.Decider{Issuer: "https://i", Subject: "s-alice-app1", ObjectId: "oid-alice", Name: "Alice"}
	aliceOtherApp := &secureauditv1.Decider{Issuer: "https://i", Subject: "s-alice-app2", ObjectId: "oid-alice", Name: "Alice"}
	bob := &secureauditv1.Decider{Issuer: "https://i", Subject: "s-bob", ObjectId: "oid-bob", Name: "Bob"}
	if err := people.SeparateDuties(alice, bob, "approve"); err != nil {
		t.Errorf("bob approving alice's request: %v", err)
	}
	for _, d := range []*secureauditv1.Decider{alice, aliceOtherApp} {
		err := people.SeparateDuties(alice, d, "approve")
		var duties *people.DutiesError
		if !errors.As(err, &duties) || !strings.Contains(err.Error(), "Alice requested this") {
			t.Errorf("alice approving her own request (subject %s): %v, want a separation-of-duties refusal", d.GetSubject(), err)
		}
	}
}
