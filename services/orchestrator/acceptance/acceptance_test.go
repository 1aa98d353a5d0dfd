package acceptance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
	"secureaudit.dev/platform/rpctest"
	evlog "secureaudit.dev/services/orchestrator/evidence"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/people/peopletest"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// TestMain stops the PostgreSQL server the tests started (storagetest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const audience = "secureaudit-approvals"

// finding is an RBAC finding of subject through binding to role, with the
// given matched verbs.
func finding(id, rule, subject, binding, role, grantKey string, verbs ...string) *secureauditv1.Finding {
	return &secureauditv1.Finding{Id: id, RuleId: rule, Title: "t", Severity: secureauditv1.Severity_SEVERITY_CRITICAL, SeverityReason: "base",
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: subject},
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: binding},
		Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: role},
		Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Remediation: "r", GrantKey: grantKey,
		MatchedRules: []*secureauditv1.PolicyRule{{Verbs: verbs, Resources: []string{"secrets"}, ApiGroups: []string{""}}}}
}

type fixture struct {
	reg   *Registry
	api   secureauditv1.AcceptanceServiceClient
	log   *evlog.Log
	iss   *peopletest.Issuer
	clock *time.Time
}

// setup stores a succeeded audit of cluster aks-prod with findings, and
// serves the AcceptanceService over mTLS with the orchestrator's real
// manifest, the cli holding the operator and approver roles, people
// verified by go-oidc against a local HTTPS issuer.
func setup(t *testing.T, db *storage.DB, findings []*secureauditv1.Finding, verify bool) *fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	f := &fixture{clock: &now}
	st := store.New(db)
	a := &secureauditv1.Audit{Id: "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", Cluster: "aks-prod", State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, CreatedAt: timestamppb.New(now.Add(-time.Hour))}
	if err := st.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveResult(ctx, a.GetId(), findings, &secureauditv1.Report{AuditId: a.GetId()}, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.log, err = evlog.New(ctx, db, filepath.Join(t.TempDir(), "evidence.key")); err != nil {
		t.Fatal(err)
	}
	var v Verifier
	if verify {
		f.iss = peopletest.New(t)
		pv, err := people.New(people.Config{Issuer: f.iss.URL(), Audience: audience, CAFile: f.iss.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		v = pv
	}
	f.reg = New(db, f.log, st, v, rpctest.Logger(t), WithClock(func() time.Time { return *f.clock }))
	p := rpctest.NewPKI(t)
	if p.Callers, err = authz.ParseCallers("test-callers.yaml", []byte(`apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, operator, approver]
`)); err != nil {
		t.Fatal(err)
	}
	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) {
		secureauditv1.RegisterAcceptanceServiceServer(s, NewServer(f.reg, rpctest.Logger(t)))
		secureauditv1.RegisterAuditServiceServer(s, secureauditv1.UnimplementedAuditServiceServer{})
		secureauditv1.RegisterEvidenceServiceServer(s, secureauditv1.UnimplementedEvidenceServiceServer{})
		secureauditv1.RegisterScopeServiceServer(s, secureauditv1.UnimplementedScopeServiceServer{})
		secureauditv1.RegisterRegressionServiceServer(s, secureauditv1.UnimplementedRegressionServiceServer{})
		secureauditv1.RegisterControlsServiceServer(s, secureauditv1.UnimplementedControlsServiceServer{})
	})
	f.api = secureauditv1.NewAcceptanceServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
	return f
}

func wantCode(t *testing.T, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), text) {
		t.Errorf("err = %v, want %s saying %q", err, code, text)
	}
}

func (f *fixture) entries(t *testing.T) []*evidence.Entry {
	t.Helper()
	es, err := f.log.Entries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*evidence.Entry
	for _, e := range es {
		if e.Control == Control {
			out = append(out, e)
		}
	}
	return out
}

// TestAcceptanceCycle: a person requests the acceptance of a finding of the
// latest audit, cannot approve it themself, another person approves it;
// the evidence names both; the accepted finding leaves the main list while
// the grant is the one accepted, and comes back flagged when another
// binding or a wider role grants it and when the acceptance expires (whose
// expiry is recorded in the evidence once). On both backends, over mTLS,
// with ID tokens verified by go-oidc.
func TestAcceptanceCycle(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		admin := finding("aaaaaaaaaaaaaaaa", "RBAC-003", "alice@example.com", "ops-admin", "secret-reader", "1111111111111111", "get", "list")
		other := finding("bbbbbbbbbbbbbbbb", "RBAC-003", "carol@example.com", "carol-admin", "secret-reader", "2222222222222222", "get")
		f := setup(t, db, []*secureauditv1.Finding{admin, other}, true)
		alice := f.iss.Sign(t, f.iss.Valid(audience, "alice", "Alice Operator"))
		bob := f.iss.Sign(t, f.iss.Valid(audience, "bob", "Bob Approver"))
		expires := timestamppb.New(f.clock.AddDate(0, 0, 30))
		request := func(r *secureauditv1.RequestAcceptanceRequest) (*secureauditv1.RequestAcceptanceResponse, error) {
			r.Reason, r.Ticket, r.ExpiresAt, r.IdToken = "break-glass reader, compensated by alerting", "SEC-42", expires, alice
			return f.api.RequestAcceptance(ctx, r)
		}

		_, err := request(&secureauditv1.RequestAcceptanceRequest{FindingId: "cccccccccccccccc"})
		wantCode(t, err, codes.NotFound, "the latest audit has no finding cccccccccccccccc")
		_, err = request(&secureauditv1.RequestAcceptanceRequest{RuleId: "RBAC-003", Subject: "User:alice@example.com", Binding: "another"})
		wantCode(t, err, codes.NotFound, "no finding RBAC-003 for User:alice@example.com through another")
		_, err = f.api.RequestAcceptance(ctx, &secureauditv1.RequestAcceptanceRequest{FindingId: admin.GetId(), Reason: "r", Ticket: "T", ExpiresAt: timestamppb.New(f.clock.Add(-time.Hour)), IdToken: alice})
		wantCode(t, err, codes.InvalidArgument, "is not in the future")
		_, err = f.api.RequestAcceptance(ctx, &secureauditv1.RequestAcceptanceRequest{FindingId: admin.GetId(), RuleId: "RBAC-003", Reason: "r", Ticket: "T", ExpiresAt: expires, IdToken: alice})
		wantCode(t, err, codes.InvalidArgument, "name the finding by finding_id, or by rule_id and subject")

		resp, err := request(&secureauditv1.RequestAcceptanceRequest{RuleId: "RBAC-003", Subject: "User:alice@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		acc := resp.GetAcceptance()
		if acc.GetFindingId() != admin.GetId() || acc.GetCluster() != "aks-prod" || acc.GetRequestedBy().GetSubject() != "alice" || acc.GetApprovedBy() != nil || len(acc.GetGrantRules()) != 1 {
			t.Errorf("requested acceptance = %v", acc)
		}
		// Requested, not approved: the finding stays in the main list.
		applied, err := f.reg.Apply(ctx, "aks-prod", []*secureauditv1.Finding{admin, other})
		if err != nil {
			t.Fatal(err)
		}
		if len(applied.Main) != 2 || len(applied.Accepted) != 0 {
			t.Errorf("before approval: main %d, accepted %d; want 2, 0", len(applied.Main), len(applied.Accepted))
		}

		_, err = f.api.ApproveAcceptance(ctx, &secureauditv1.ApproveAcceptanceRequest{Id: acc.GetId(), IdToken: alice})
		wantCode(t, err, codes.PermissionDenied, "separation of duties: Alice Operator <alice@example.com> requested this and cannot also approve it")
		_, err = f.api.ApproveAcceptance(ctx, &secureauditv1.ApproveAcceptanceRequest{Id: acc.GetId() + 100, IdToken: bob})
		wantCode(t, err, codes.NotFound, "no acceptance")
		expired := f.iss.Valid(audience, "bob", "Bob Approver")
		expired.Expiry = time.Now().Add(-time.Minute)
		_, err = f.api.ApproveAcceptance(ctx, &secureauditv1.ApproveAcceptanceRequest{Id: acc.GetId(), IdToken: f.iss.Sign(t, expired)})
		wantCode(t, err, codes.Unauthenticated, "expired")

		ap, err := f.api.ApproveAcceptance(ctx, &secureauditv1.ApproveAcceptanceRequest{Id: acc.GetId(), IdToken: bob})
		if err != nil {
			t.Fatal(err)
		}
		if ap.GetAcceptance().GetApprovedBy().GetSubject() != "bob" || ap.GetAcceptance().GetRequestedBy().GetSubject() != "alice" {
			t.Errorf("approved acceptance: requested by %v, approved by %v", ap.GetAcceptance().GetRequestedBy(), ap.GetAcceptance().GetApprovedBy())
		}
		_, err = f.api.ApproveAcceptance(ctx, &secureauditv1.ApproveAcceptanceRequest{Id: acc.GetId(), IdToken: bob})
		wantCode(t, err, codes.InvalidArgument, "was approved already, by Bob Approver")

		list, err := f.api.ListAcceptances(ctx, &secureauditv1.ListAcceptancesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetAcceptances()) != 1 || list.GetAcceptances()[0].GetApprovedBy().GetName() != "Bob Approver" || list.GetAcceptances()[0].GetTicket() != "SEC-42" {
			t.Errorf("list = %v", list.GetAcceptances())
		}

		// The evidence: the request names Alice, the approval both.
		es := f.entries(t)
		if len(es) != 2 {
			t.Fatalf("%d acceptance entries, want 2 (request, approval)", len(es))
		}
		var data struct {
			RequestedBy map[string]string `json:"requested_by"`
			ApprovedBy  map[string]string `json:"approved_by"`
		}
		if err := json.Unmarshal(es[1].Data, &data); err != nil {
			t.Fatal(err)
		}
		if es[0].Kind != evidence.KindApproval || !strings.Contains(es[0].Summary, "Alice Operator <alice@example.com> requested the acceptance of RBAC-003 for User:alice@example.com") ||
			!strings.Contains(es[1].Summary, "Bob Approver <bob@example.com> approved acceptance") || !strings.Contains(es[1].Summary, "requested by Alice Operator") ||
			data.RequestedBy["oid"] != "oid-alice" || data.ApprovedBy["oid"] != "oid-bob" || data.ApprovedBy["issuer"] != f.iss.URL() || strings.Join(es[1].Criteria, ",") != "CC5.2,CC6.3" {
			t.Errorf("evidence:\n%s\n%s\n%s", es[0].Summary, es[1].Summary, es[1].Data)
		}

		// Approved: out of the main list, in Accepted; another cluster's
		// findings are not touched.
		applied, err = f.reg.Apply(ctx, "aks-prod", []*secureauditv1.Finding{admin, other})
		if err != nil {
			t.Fatal(err)
		}
		if len(applied.Main) != 1 || applied.Main[0].GetId() != other.GetId() || len(applied.Accepted) != 1 || applied.Accepted[0].GetFinding().GetId() != admin.GetId() || len(applied.Returned) != 0 {
			t.Errorf("approved: main %v, accepted %v, returned %v", applied.Main, applied.Accepted, applied.Returned)
		}
		if applied, _ = f.reg.Apply(ctx, "aks-staging", []*secureauditv1.Finding{admin}); len(applied.Main) != 1 {
			t.Errorf("another cluster: main %d, want 1", len(applied.Main))
		}

		returned := func(name string, fs []*secureauditv1.Finding, status secureauditv1.AcceptanceStatus, detail string) {
			t.Helper()
			applied, err := f.reg.Apply(ctx, "aks-prod", fs)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied.Accepted) != 0 || len(applied.Returned) != 1 || len(applied.Main) != len(fs) {
				t.Fatalf("%s: main %d, accepted %d, returned %d; want %d, 0, 1", name, len(applied.Main), len(applied.Accepted), len(applied.Returned), len(fs))
			}
			if r := applied.Returned[0]; r.GetStatus() != status || !strings.Contains(r.GetDetail(), detail) {
				t.Errorf("%s: returned %v %q, want %v saying %q", name, r.GetStatus(), r.GetDetail(), status, detail)
			}
		}
		// Another binding grants it.
		moved := proto.Clone(admin).(*secureauditv1.Finding)
		moved.Binding.Name = "ops-admin-2"
		returned("another binding", []*secureauditv1.Finding{moved}, secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED, "grant changed since acceptance: binding ops-admin-2, was ops-admin")
		// A wider role: the same grant matches more (another verb), and
		// triggers another rule.
		wider := proto.Clone(admin).(*secureauditv1.Finding)
		wider.MatchedRules[0].Verbs = append(wider.MatchedRules[0].Verbs, "watch")
		returned("wider rules", []*secureauditv1.Finding{wider}, secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED, "beyond what was accepted")
		more := finding("dddddddddddddddd", "RBAC-010", "alice@example.com", "ops-admin", "secret-reader", "1111111111111111", "create")
		returned("another rule of the grant", []*secureauditv1.Finding{admin, more}, secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_GRANT_CHANGED, "RBAC-010")

		// Expiry: the finding returns, and the expiry is recorded once.
		*f.clock = f.clock.AddDate(0, 0, 31)
		returned("expired", []*secureauditv1.Finding{admin}, secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_EXPIRED, "acceptance expired at 2027-01-06T10:00:00Z")
		returned("expired again", []*secureauditv1.Finding{admin}, secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_EXPIRED, "acceptance expired")
		es = f.entries(t)
		if len(es) != 3 || !strings.Contains(es[2].Summary, "expired at 2027-01-06T10:00:00Z") || !strings.Contains(es[2].Summary, "requested by Alice Operator <alice@example.com>, approved by Bob Approver <bob@example.com>") {
			t.Errorf("after expiry: %d entries, last %q", len(es), es[len(es)-1].Summary)
		}
	})
}

// TestAcceptanceNeedsIssuer: without an OpenID Connect issuer, nobody can
// request an acceptance (no typed names, even in development).
func TestAcceptanceNeedsIssuer(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := setup(t, db, []*secureauditv1.Finding{finding("aaaaaaaaaaaaaaaa", "RBAC-003", "alice@example.com", "b", "r", "")}, false)
		_, err := f.api.RequestAcceptance(context.Background(), &secureauditv1.RequestAcceptanceRequest{FindingId: "aaaaaaaaaaaaaaaa", Reason: "r", Ticket: "T",
			ExpiresAt: timestamppb.New(f.clock.Add(time.Hour)), IdToken: "eyJ.x.y"})
		wantCode(t, err, codes.FailedPrecondition, "no OpenID Connect issuer configured")
	})
}
