package approval

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/people/peopletest"
)

const testAudience = "secureaudit-approvals"

// scopeAPI serves the ScopeService of reg over mTLS with the orchestrator's
// real manifest, the cli holding the operator and approver roles, and
// returns the cli's client.
func scopeAPI(t *testing.T, reg *Registry) secureauditv1.ScopeServiceClient {
	t.Helper()
	p := rpctest.NewPKI(t)
	var err error
	p.Callers, err = authz.ParseCallers("test-callers.yaml", []byte(`apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, operator, approver]
`))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) {
		secureauditv1.RegisterScopeServiceServer(s, NewServer(reg, rpctest.Logger(t)))
		// The manifest lists the orchestrator's every method.
		secureauditv1.RegisterAuditServiceServer(s, secureauditv1.UnimplementedAuditServiceServer{})
		secureauditv1.RegisterEvidenceServiceServer(s, secureauditv1.UnimplementedEvidenceServiceServer{})
		secureauditv1.RegisterRegressionServiceServer(s, secureauditv1.UnimplementedRegressionServiceServer{})
		secureauditv1.RegisterControlsServiceServer(s, secureauditv1.UnimplementedControlsServiceServer{})
		secureauditv1.RegisterAcceptanceServiceServer(s, secureauditv1.UnimplementedAcceptanceServiceServer{})
		secureauditv1.RegisterReviewServiceServer(s, secureauditv1.UnimplementedReviewServiceServer{})
	})
	return secureauditv1.NewScopeServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
}

func wantCode(t *testing.T, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), text) {
		t.Errorf("err = %v, want %s saying %q", err, code, text)
	}
}

// TestDecisionsByAuthenticatedPeople: a request and an approval carry the
// people their ID tokens name, verified by go-oidc against a local issuer
// over HTTPS; the evidence names them; a token that fails any check is
// refused saying why; nobody approves their own request; typed names are
// refused outside development.
func TestDecisionsByAuthenticatedPeople(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		iss := peopletest.New(t)
		v, err := people.New(people.Config{Issuer: iss.URL(), Audience: testAudience, CAFile: iss.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		rec := &fakeLog{}
		reg := newRegistry(t, backend, rec, map[string]*scope.Manifest{identity.ReportAgent: parse(t, reportManifest)}, WithPeople(v))
		api := scopeAPI(t, reg)
		ctx := context.Background()
		digest := parse(t, reportManifest).Digest()
		alice := iss.Sign(t, iss.Valid(testAudience, "alice", "Alice Operator"))
		bob := iss.Sign(t, iss.Valid(testAudience, "bob", "Bob Approver"))
		approve := func(token, typed string) (*secureauditv1.ApproveScopeResponse, error) {
			return api.ApproveScope(ctx, &secureauditv1.ApproveScopeRequest{Workload: identity.ReportAgent, Digest: digest, Ticket: "SEC-7", IdToken: token, Approver: typed})
		}

		_, err = approve(bob, "")
		wantCode(t, err, codes.FailedPrecondition, "nobody requested the approval")

		req, err := api.RequestScope(ctx, &secureauditv1.RequestScopeRequest{Workload: identity.ReportAgent, Digest: digest, Ticket: "SEC-7", Reason: "adds a method", IdToken: alice})
		if err != nil {
			t.Fatal(err)
		}
		if req.GetRequestedBy().GetSubject() != "alice" || req.GetRequestedBy().GetName() != "Alice Operator" {
			t.Errorf("requested by %v, want alice", req.GetRequestedBy())
		}

		_, err = approve(alice, "")
		wantCode(t, err, codes.PermissionDenied, "separation of duties: Alice Operator <alice@example.com> requested this")

		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		refused := map[string]peopletest.Token{}
		tok := iss.Valid(testAudience, "bob", "Bob")
		tok.Expiry = time.Now().Add(-time.Minute)
		refused["expired at"] = tok
		refused["wrong audience"] = iss.Valid("another-client", "bob", "Bob")
		tok = iss.Valid(testAudience, "bob", "Bob")
		tok.Issuer = "https://login.microsoftonline.com/another-tenant/v2.0"
		refused["wrong issuer"] = tok
		tok = iss.Valid(testAudience, "bob", "Bob")
		tok.Key = other
		refused["bad signature"] = tok
		tok = iss.Valid(testAudience, "bob", "Bob")
		tok.Key, tok.KeyID = other, "rotated-away"
		refused["unknown signing key"] = tok
		for want, tok := range refused {
			t.Run(want, func(t *testing.T) {
				_, err := approve(iss.Sign(t, tok), "")
				wantCode(t, err, codes.Unauthenticated, want)
			})
		}
		_, err = approve("", "bob")
		wantCode(t, err, codes.FailedPrecondition, "typed approver name is accepted only by a development orchestrator")

		before := len(rec.entries)
		resp, err := approve(bob, "")
		if err != nil {
			t.Fatal(err)
		}
		a := resp.GetApproval()
		wantBob := &secureauditv1.Decider{Issuer: iss.URL(), Subject: "bob", ObjectId: "oid-bob", Name: "Bob Approver", Email: "bob@example.com"}
		if diff := cmp.Diff(wantBob, a.GetApprovedBy(), protocmp.Transform()); diff != "" {
			t.Errorf("approved by (-want +got):\n%s", diff)
		}
		if a.GetApprover() != "Bob Approver <bob@example.com>" || a.GetRequestedBy().GetSubject() != "alice" {
			t.Errorf("approval %v, want approver Bob and requester alice", a)
		}
		if len(rec.entries) != before+1 {
			t.Fatalf("refused decisions appended evidence: %d entries, want %d", len(rec.entries), before+1)
		}
		e := rec.entries[len(rec.entries)-1]
		if !strings.Contains(e.Summary, "Bob Approver <bob@example.com> approved") || !strings.Contains(e.Summary, "requested by Alice Operator") {
			t.Errorf("evidence summary %q does not name both people", e.Summary)
		}
		var data struct {
			ApprovedBy  map[string]string `json:"approved_by"`
			RequestedBy map[string]string `json:"requested_by"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.ApprovedBy["sub"] != "bob" || data.ApprovedBy["oid"] != "oid-bob" || data.ApprovedBy["email"] != "bob@example.com" || data.ApprovedBy["issuer"] != iss.URL() || data.RequestedBy["sub"] != "alice" {
			t.Errorf("evidence data %s does not name the people", e.Data)
		}
		// A recorded scope review names its reviewer the same way.
		rev, err := api.ReviewScopes(ctx, &secureauditv1.ReviewScopesRequest{IdToken: bob})
		if err != nil || rev.GetEvidenceIndex() < 0 {
			t.Fatalf("review: %v (%v)", err, rev)
		}
		if e := rec.entries[len(rec.entries)-1]; !strings.Contains(e.Summary, "scope review by Bob Approver <bob@example.com>") || !strings.Contains(string(e.Data), `"reviewedBy":{"email":"bob@example.com","issuer":"`+iss.URL()+`","name":"Bob Approver","oid":"oid-bob","sub":"bob"}`) {
			t.Errorf("review evidence does not name bob: %s\n%s", e.Summary, e.Data)
		}
		_, err = api.ReviewScopes(ctx, &secureauditv1.ReviewScopesRequest{Reviewer: "bob"})
		wantCode(t, err, codes.FailedPrecondition, "typed approver name is accepted only by a development orchestrator")
		// The stored approval keeps them.
		latest, err := reg.latest(ctx, identity.ReportAgent)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, latest, protocmp.Transform()); diff != "" {
			t.Errorf("stored approval (-returned +stored):\n%s", diff)
		}
	})
}

// TestDecisionsWithoutIssuer: without an issuer a token cannot be checked
// and is refused; a development orchestrator takes a typed name, marked
// unverified.
func TestDecisionsWithoutIssuer(t *testing.T) {
	ctx := context.Background()
	digest := parse(t, reportManifest).Digest()
	req := &secureauditv1.ApproveScopeRequest{Workload: identity.ReportAgent, Digest: digest, Ticket: "SEC-8", IdToken: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}

	api := scopeAPI(t, newRegistry(t, "sqlite", &fakeLog{}, nil))
	_, err := api.ApproveScope(ctx, req)
	wantCode(t, err, codes.FailedPrecondition, "no OpenID Connect issuer configured")

	rec := &fakeLog{}
	dev := scopeAPI(t, newRegistry(t, "sqlite", rec, nil, WithUnverifiedApprovers(true)))
	resp, err := dev.ApproveScope(ctx, &secureauditv1.ApproveScopeRequest{Workload: identity.ReportAgent, Digest: digest, Ticket: "SEC-8", Approver: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetApproval().GetApprover(); got != "UNVERIFIED (development): e2e" || resp.GetApproval().GetApprovedBy() != nil {
		t.Errorf("development approval by %q (%v), want it marked unverified", got, resp.GetApproval().GetApprovedBy())
	}
	// Both at once is invalid (protovalidate, before the handler).
	req.Approver = "e2e"
	_, err = dev.ApproveScope(ctx, req)
	wantCode(t, err, codes.InvalidArgument, "id_token")
}
