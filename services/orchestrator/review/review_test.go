package review

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

const audience = "secureaudit-reviews"

func user(name string) *secureauditv1.SubjectRef {
	return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: name}
}

func grant(binding string) *secureauditv1.AccessGrant {
	return &secureauditv1.AccessGrant{Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: binding},
		Role:  &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "admin"},
		Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}}
}

// review is an access review: alice@example.com through alice-admin,
// mallory@example.com through mallory-admin and mallory-extra, the group
// ops (whose member is alice) through ops-admin.
func accessReview(without ...string) []*secureauditv1.ReviewSubject {
	out := []*secureauditv1.ReviewSubject{
		{Subject: user("alice@example.com"), Grants: []*secureauditv1.AccessGrant{grant("alice-admin")}},
		{Subject: user("mallory@example.com"), Grants: []*secureauditv1.AccessGrant{grant("mallory-admin"), grant("mallory-extra")}},
		{Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "ops"}, Grants: []*secureauditv1.AccessGrant{grant("ops-admin")},
			Members: []*secureauditv1.Person{{UserPrincipalName: "alice@example.com", DisplayName: "Alice Operator"}}},
		{Subject: user("dave@example.com"), Grants: []*secureauditv1.AccessGrant{grant("dave-view")}},
	}
	for _, b := range without {
		for _, s := range out {
			var keep []*secureauditv1.AccessGrant
			for _, g := range s.Grants {
				if g.GetBinding().GetName() != b {
					keep = append(keep, g)
				}
			}
			s.Grants = keep
		}
	}
	var kept []*secureauditv1.ReviewSubject
	for _, s := range out {
		if len(s.Grants) > 0 {
			kept = append(kept, s)
		}
	}
	return kept
}

type fixture struct {
	reg   *Registry
	st    *store.Store
	api   secureauditv1.ReviewServiceClient
	log   *evlog.Log
	iss   *peopletest.Issuer
	clock *time.Time
}

func setup(t *testing.T, db *storage.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	f := &fixture{clock: &now, st: store.New(db)}
	var err error
	if f.log, err = evlog.New(ctx, db, filepath.Join(t.TempDir(), "evidence.key")); err != nil {
		t.Fatal(err)
	}
	f.iss = peopletest.New(t)
	pv, err := people.New(people.Config{Issuer: f.iss.URL(), Audience: audience, CAFile: f.iss.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	f.reg = New(db, f.log, f.st, pv, rpctest.Logger(t), WithClock(func() time.Time { return *f.clock }))
	p := rpctest.NewPKI(t)
	if p.Callers, err = authz.ParseCallers("test-callers.yaml", []byte(`apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/cli
    roles: [viewer, approver]
`)); err != nil {
		t.Fatal(err)
	}
	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Serve(t, identity.Orchestrator, manifest, func(s *grpc.Server) {
		secureauditv1.RegisterReviewServiceServer(s, NewServer(f.reg, rpctest.Logger(t)))
		secureauditv1.RegisterAcceptanceServiceServer(s, secureauditv1.UnimplementedAcceptanceServiceServer{})
		secureauditv1.RegisterAuditServiceServer(s, secureauditv1.UnimplementedAuditServiceServer{})
		secureauditv1.RegisterEvidenceServiceServer(s, secureauditv1.UnimplementedEvidenceServiceServer{})
		secureauditv1.RegisterScopeServiceServer(s, secureauditv1.UnimplementedScopeServiceServer{})
		secureauditv1.RegisterRegressionServiceServer(s, secureauditv1.UnimplementedRegressionServiceServer{})
		secureauditv1.RegisterControlsServiceServer(s, secureauditv1.UnimplementedControlsServiceServer{})
	})
	f.api = secureauditv1.NewReviewServiceClient(p.Dial(t, addr, identity.Orchestrator, identity.CLI))
	return f
}

// audit runs what the runner does for an audit of aks-prod with the given
// access review, main findings and the IDs of those the report-agent named
// as Revoke: opens its campaign (keys, revocation checks, tracking),
// stores the report input and a CSV of the keyed items, and marks it
// succeeded.
func (f *fixture) audit(t *testing.T, id string, review []*secureauditv1.ReviewSubject, revoke []string, main ...*secureauditv1.Finding) *secureauditv1.Report {
	t.Helper()
	ctx := context.Background()
	a := &secureauditv1.Audit{Id: id, Cluster: "aks-prod", State: secureauditv1.AuditState_AUDIT_STATE_RUNNING, CreatedAt: timestamppb.New(*f.clock)}
	if err := f.st.CreateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	report := &secureauditv1.Report{AuditId: id, Cluster: "aks-prod", AccessReview: review}
	if err := f.reg.Open(ctx, id, "aks-prod", report, main, revoke); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SaveResult(ctx, id, nil, report, map[secureauditv1.ReportFormat][]byte{secureauditv1.ReportFormat_REPORT_FORMAT_CSV: []byte(sheetOf(t, report))}); err != nil {
		t.Fatal(err)
	}
	a.State = secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
	if err := f.st.UpdateAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	return report
}

// sheetOf writes the columns of the access review CSV an import reads
// (the report-agent's renderer is tested against the same header there).
func sheetOf(t testing.TB, r *secureauditv1.Report, decisions ...string) string {
	t.Helper()
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"item", "key", "subject_kind", "subject", "access", "decision", "reviewer", "date", "comment"})
	for i, s := range r.GetAccessReview() {
		var access []string
		for _, g := range s.GetGrants() {
			access = append(access, "ClusterRole admin through "+g.GetBinding().GetName()+", cluster-wide")
		}
		row := []string{string(rune('1' + i)), s.GetKey(), kindText(s.GetSubject().GetKind()), kindText(s.GetSubject().GetKind()) + " " + s.GetSubject().GetName(), strings.Join(access, "; "), "", "", "", ""}
		if i < len(decisions) {
			parts := strings.SplitN(decisions[i], "|", 2)
			row[5] = parts[0]
			if len(parts) == 2 {
				row[8] = parts[1]
			}
		}
		_ = w.Write(row)
	}
	w.Flush()
	return b.String()
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

// TestReviewCycle walks a campaign on both backends, over mTLS, with ID
// tokens verified by go-oidc: an edited, unknown, repeated or self-decided
// row refuses the whole sheet (nothing recorded); a valid sheet records
// every decision and tracks the Revoke; the next audit verifies the
// removed grant and finds the other still present, raised to critical at
// the audit after; an undecided campaign past its due date is an overdue
// alert once; the evidence names the person for each.
func TestReviewCycle(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := setup(t, db)
		first := f.audit(t, "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview(), nil)
		for _, s := range first.GetAccessReview() {
			if s.GetKey() != Key(s.GetSubject()) || len(s.GetKey()) != 16 {
				t.Fatalf("item %v: key %q", s.GetSubject(), s.GetKey())
			}
		}
		if c := first.GetReview().GetCampaigns(); len(c) != 1 || c[0].GetItems() != 4 || c[0].GetPending() != 4 || !c[0].GetDueAt().AsTime().Equal(f.clock.Add(DefaultDue)) {
			t.Fatalf("campaign in the report = %v", c)
		}
		alice := f.iss.Sign(t, f.iss.Valid(audience, "alice", "Alice Operator"))
		bob := f.iss.Sign(t, f.iss.Valid(audience, "bob", "Bob Approver"))
		aliceKey, malloryKey, opsKey, daveKey := first.AccessReview[0].GetKey(), first.AccessReview[1].GetKey(), first.AccessReview[2].GetKey(), first.AccessReview[3].GetKey()

		// Separation of duties: alice's own item, and the group she is a
		// member of.
		_, err := f.api.DecideReview(ctx, &secureauditv1.DecideReviewRequest{ItemKey: aliceKey, Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, IdToken: alice})
		wantCode(t, err, codes.PermissionDenied, "cannot decide review item "+aliceKey+" (User:alice@example.com) about their own access (the subject is alice@example.com)")
		_, err = f.api.DecideReview(ctx, &secureauditv1.DecideReviewRequest{ItemKey: opsKey, Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, IdToken: alice})
		wantCode(t, err, codes.PermissionDenied, "a member of the group is alice@example.com")
		_, err = f.api.DecideReview(ctx, &secureauditv1.DecideReviewRequest{ItemKey: "ffffffffffffffff", Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, IdToken: bob})
		wantCode(t, err, codes.NotFound, "has no item ffffffffffffffff")
		_, err = f.api.DecideReview(ctx, &secureauditv1.DecideReviewRequest{ItemKey: daveKey, Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REQUIRES_JUSTIFICATION, IdToken: bob})
		wantCode(t, err, codes.InvalidArgument, "Requires justification needs the question")

		// Refused sheets: nothing of them is recorded.
		good := sheetOf(t, first, "Confirmed", "Revoke|left the team", "Requires justification|who uses ops-admin?")
		refused := []struct{ name, sheet, want string }{
			{"subject edited", strings.Replace(good, "User mallory@example.com", "User eve@example.com", 1), "row 3: item " + malloryKey + "'s subject was edited"},
			{"access edited", strings.Replace(good, "through mallory-extra", "through other", 1), "row 3: item " + malloryKey + "'s access was edited"},
			{"unknown key", strings.Replace(good, opsKey, "0123456789abcdef", 1), "row 4: key 0123456789abcdef names no item"},
			{"bad decision", strings.Replace(good, "Confirmed", "Keep", 1), `row 2: decision "Keep" is not one of`},
			{"repeated", good + strings.SplitN(good, "\n", 3)[1] + "\n", "row 6: item " + aliceKey + " is also row 2"},
		}
		for _, c := range refused {
			_, err := f.api.ImportReview(ctx, &secureauditv1.ImportReviewRequest{Csv: []byte(c.sheet), IdToken: bob})
			wantCode(t, err, codes.InvalidArgument, c.want)
		}
		// Alice's sheet holds her own item: refused, naming the row.
		_, err = f.api.ImportReview(ctx, &secureauditv1.ImportReviewRequest{Csv: []byte(strings.Replace(good, "Confirmed", "", 1)), IdToken: alice})
		wantCode(t, err, codes.PermissionDenied, "row 4: separation of duties")
		st, err := f.api.GetReviewStatus(ctx, &secureauditv1.GetReviewStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetCampaign().GetDecided() != 0 || len(st.GetRevocations()) != 0 {
			t.Fatalf("after refused sheets: %d decided, %d revocations; want none", st.GetCampaign().GetDecided(), len(st.GetRevocations()))
		}

		// A re-ordered sheet is matched by key.
		lines := strings.Split(strings.TrimSpace(good), "\n")
		reordered := strings.Join([]string{lines[0], lines[3], lines[4], lines[2], lines[1]}, "\n") + "\n"
		imp, err := f.api.ImportReview(ctx, &secureauditv1.ImportReviewRequest{Csv: []byte(reordered), IdToken: bob})
		if err != nil {
			t.Fatal(err)
		}
		if len(imp.GetDecisions()) != 3 || imp.GetSkipped() != 1 || len(imp.GetRevocations()) != 1 {
			t.Fatalf("import: %d decisions, %d skipped, %d revocations; want 3, 1, 1", len(imp.GetDecisions()), imp.GetSkipped(), len(imp.GetRevocations()))
		}
		rev := imp.GetRevocations()[0]
		if rev.GetItemKey() != malloryKey || len(rev.GetBindings()) != 2 || rev.GetDecidedBy().GetSubject() != "bob" || rev.GetState() != secureauditv1.RevocationState_REVOCATION_STATE_PENDING {
			t.Errorf("revocation = %v", rev)
		}
		_, err = f.api.DecideReview(ctx, &secureauditv1.DecideReviewRequest{ItemKey: malloryKey, Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, IdToken: bob})
		wantCode(t, err, codes.InvalidArgument, "was decided already: Revoke by Bob Approver")

		// The next audit: mallory-admin is gone, mallory-extra is not.
		*f.clock = f.clock.Add(24 * time.Hour)
		second := f.audit(t, "1c7f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview("mallory-admin"), nil)
		revs := second.GetReview().GetRevocations()
		if len(revs) != 1 || revs[0].GetState() != secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT || revs[0].GetSeverity() != secureauditv1.Severity_SEVERITY_HIGH ||
			len(revs[0].GetRemaining()) != 1 || revs[0].GetRemaining()[0].GetName() != "mallory-extra" {
			t.Fatalf("second audit's revocations = %v", revs)
		}
		var prev *secureauditv1.ReviewCampaign
		for _, c := range second.GetReview().GetCampaigns() {
			if c.GetAuditId() == first.GetAuditId() {
				prev = c
			}
		}
		if prev == nil || prev.GetDecided() != 3 || prev.GetPending() != 1 || prev.GetRevoked() != 1 || prev.GetStillPresent() != 1 || prev.GetVerified() != 0 {
			t.Errorf("first campaign in the second report = %v", prev)
		}
		// The same audit run again (its replica stopped): the campaign is
		// kept, the revocation not counted twice.
		again := &secureauditv1.Report{AuditId: second.GetAuditId(), Cluster: "aks-prod", AccessReview: accessReview("mallory-admin")}
		if err := f.reg.Open(ctx, second.GetAuditId(), "aks-prod", again, nil, nil); err != nil {
			t.Fatalf("audit run again: %v", err)
		}
		if revs := again.GetReview().GetRevocations(); len(revs) != 1 || revs[0].GetAuditsSurvived() != 1 {
			t.Fatalf("audit run again: revocations %v", revs)
		}
		third := f.audit(t, "2d8f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview("mallory-admin"), nil)
		if revs := third.GetReview().GetRevocations(); len(revs) != 1 || revs[0].GetSeverity() != secureauditv1.Severity_SEVERITY_CRITICAL || revs[0].GetAuditsSurvived() != 2 {
			t.Fatalf("third audit's revocations = %v", revs)
		}
		// An incomplete snapshot proves no removal.
		partial := &secureauditv1.Report{AuditId: "2d8f0d46-5a8e-4d57-9a45-6c2d0e1f2a3c", Cluster: "aks-prod", SnapshotPartial: true}
		if err := f.reg.Open(ctx, partial.GetAuditId(), "aks-prod", partial, nil, nil); err != nil {
			t.Fatal(err)
		}
		if revs := partial.GetReview().GetRevocations(); len(revs) != 0 {
			t.Fatalf("a partial snapshot checked revocations: %v", revs)
		}
		// Nor does an access review cut at its bound: mallory is not on
		// it, yet may still hold the access.
		cut := &secureauditv1.Report{AuditId: "2d8f0d46-5a8e-4d57-9a45-6c2d0e1f2a3d", Cluster: "aks-prod", AccessReview: accessReview("mallory-admin", "mallory-extra"), AccessReviewTruncated: true}
		if err := f.reg.Open(ctx, cut.GetAuditId(), "aks-prod", cut, nil, nil); err != nil {
			t.Fatal(err)
		}
		if revs := cut.GetReview().GetRevocations(); len(revs) != 0 {
			t.Fatalf("a truncated access review checked revocations: %v", revs)
		}
		// Removed: verified, and not checked again.
		*f.clock = f.clock.Add(15 * 24 * time.Hour)
		fourth := f.audit(t, "3e9f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview("mallory-admin", "mallory-extra"), nil)
		if revs := fourth.GetReview().GetRevocations(); len(revs) != 1 || revs[0].GetState() != secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED {
			t.Fatalf("fourth audit's revocations = %v", revs)
		}
		if fifth := f.audit(t, "4fa00d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview("mallory-admin", "mallory-extra"), nil); len(fifth.GetReview().GetRevocations()) != 0 {
			t.Errorf("a verified revocation checked again: %v", fifth.GetReview().GetRevocations())
		}
		st, err = f.api.GetReviewStatus(ctx, &secureauditv1.GetReviewStatusRequest{AuditId: first.GetAuditId()})
		if err != nil {
			t.Fatal(err)
		}
		if !st.GetCampaign().GetOverdue() || st.GetCampaign().GetVerified() != 1 || len(st.GetOverdue()) == 0 {
			t.Errorf("status of the first campaign = %v", st)
		}

		// The evidence: three decisions naming Bob, the still-present
		// checks and the verification (CC6.2), the overdue campaigns
		// (CC4.1) once each.
		var decided, still, verified, overdue int
		for _, e := range f.entries(t) {
			switch {
			case e.Kind == evidence.KindApproval:
				decided++
				var data struct {
					DecidedBy map[string]string `json:"decided_by"`
				}
				if err := json.Unmarshal(e.Data, &data); err != nil || data.DecidedBy["oid"] != "oid-bob" || !strings.HasPrefix(e.Summary, "Bob Approver <bob@example.com> decided") {
					t.Errorf("decision entry %q %s", e.Summary, e.Data)
				}
				if strings.Contains(e.Summary, "decided Revoke") && strings.Join(e.Criteria, ",") != "CC6.2,CC6.3,CC5.2" {
					t.Errorf("revoke criteria %v", e.Criteria)
				}
			case e.Outcome == evidence.OutcomeFail && e.Kind == evidence.KindControlResult:
				still++
				if strings.Join(e.Criteria, ",") != "CC6.2" || !strings.Contains(e.Summary, "mallory-extra still present") || !strings.Contains(e.Summary, "decided by Bob Approver") {
					t.Errorf("still-present entry %q %v", e.Summary, e.Criteria)
				}
			case e.Outcome == evidence.OutcomePass:
				verified++
			case e.Kind == evidence.KindAlert:
				overdue++
				if strings.Join(e.Criteria, ",") != "CC4.1" || !strings.Contains(e.Summary, "undecided") {
					t.Errorf("overdue entry %q %v", e.Summary, e.Criteria)
				}
			}
		}
		// Overdue at the fourth audit: the first campaign (dave undecided),
		// the second and third (nothing decided).
		if decided != 3 || still != 2 || verified != 1 || overdue != 3 {
			t.Errorf("evidence: %d decisions, %d still present, %d verified, %d overdue; want 3, 2, 1, 3", decided, still, verified, overdue)
		}
	})
}

// finding is a finding of rule about subject through binding.
func finding(id string, subject *secureauditv1.SubjectRef, binding string, sev secureauditv1.Severity, family secureauditv1.RuleFamily) *secureauditv1.Finding {
	return &secureauditv1.Finding{Id: id, RuleId: "RBAC-001", Severity: sev, Family: family, Subject: subject,
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: binding}}
}

// TestRevokeActionsTracked: the grants of the findings the report-agent
// names as Revoke are tracked without a decision and checked by the next
// audit, once per grant (not again while open), users' and groups' only
// (a ServiceAccount's Revoke is not in the access review that verifies
// it); findings it does not name (a high permission finding, a binding
// the add-on manager reconciles, an application credential: the
// report-agent's render tests pin those actions) are not tracked, and a
// name that is not one of the audit's findings fails the audit. Which
// findings are Revoke is decided by the report-agent alone (the e2e
// TestReviewCycle checks the report's Revoke rows against the tracked
// revocations).
func TestRevokeActionsTracked(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := setup(t, db)
		crit, high := secureauditv1.Severity_SEVERITY_CRITICAL, secureauditv1.Severity_SEVERITY_HIGH
		rbac, ident := secureauditv1.RuleFamily_RULE_FAMILY_RBAC, secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY
		sa := &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "ci", Namespace: "ci"}
		reconciled := finding("5555555555555555", user("alice@example.com"), "alice-admin", crit, rbac)
		reconciled.BindingReconciled = true
		credential := finding("7777777777777777", user("00000004-0000-4000-8000-000000000004"), "app-view", high, ident)
		credential.CredentialFix = secureauditv1.CredentialFix_CREDENTIAL_FIX_REMOVE
		main := []*secureauditv1.Finding{
			finding("1111111111111111", user("dave@example.com"), "dave-view", crit, rbac),
			finding("2222222222222222", user("dave@example.com"), "dave-view", crit, rbac), // the same grant
			finding("3333333333333333", user("mallory@example.com"), "mallory-admin", high, ident),
			finding("4444444444444444", user("mallory@example.com"), "mallory-extra", high, rbac),
			finding("6666666666666666", sa, "ci-admin", crit, rbac),
			reconciled,
			credential,
		}
		// A name that is not one of the audit's main findings: the report
		// and the tracked revocations would differ, so nothing is opened.
		bad := &secureauditv1.Report{AuditId: "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3c", Cluster: "aks-prod", AccessReview: accessReview()}
		if err := f.reg.Open(ctx, bad.GetAuditId(), "aks-prod", bad, main, []string{"1111111111111111", "8888888888888888"}); err == nil || !strings.Contains(err.Error(), "finding 8888888888888888 is not one of the audit's 7 main findings") {
			t.Fatalf("Open with an unknown Revoke finding: %v", err)
		}
		// The report-agent's Revoke rows: Dave's critical grant (both
		// hits), Mallory's identity finding and the ServiceAccount's grant.
		revoke := []string{"1111111111111111", "2222222222222222", "6666666666666666", "3333333333333333"}
		first := f.audit(t, "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview(), revoke, main...)
		st, err := f.reg.Status(ctx, first.GetAuditId())
		if err != nil {
			t.Fatal(err)
		}
		var tracked []string
		for _, v := range st.GetRevocations() {
			tracked = append(tracked, v.GetFindingId()+" "+v.GetBindings()[0].GetName())
		}
		if strings.Join(tracked, ",") != "3333333333333333 mallory-admin,1111111111111111 dave-view" || st.GetCampaign().GetRevokeActions() != 2 {
			t.Fatalf("tracked revocations %v, campaign %d revoke actions; want mallory-admin and dave-view, 2", tracked, st.GetCampaign().GetRevokeActions())
		}
		// The next audit: dave-view is gone, mallory-admin is not (and its
		// finding is not tracked twice).
		second := f.audit(t, "1c7f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview("dave-view"), revoke[3:], main[2])
		states := map[string]secureauditv1.RevocationState{}
		for _, v := range second.GetReview().GetRevocations() {
			states[v.GetBindings()[0].GetName()] = v.GetState()
		}
		if len(states) != 2 || states["dave-view"] != secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED || states["mallory-admin"] != secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT {
			t.Errorf("second audit's revocations: %v", states)
		}
		if st, _ = f.reg.Status(ctx, second.GetAuditId()); len(st.GetRevocations()) != 2 {
			t.Errorf("%d revocations after the second audit, want 2 (an open one is not tracked again)", len(st.GetRevocations()))
		}
		// A reviewer confirms Mallory's access: the Revoke action's
		// revocation is overruled, not checked again, not tracked again.
		bob := f.iss.Sign(t, f.iss.Valid(audience, "bob", "Bob Approver"))
		if _, _, err := f.reg.Decide(ctx, &secureauditv1.DecideReviewRequest{ItemKey: Key(user("mallory@example.com")),
			Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, IdToken: bob}); err != nil {
			t.Fatal(err)
		}
		third := f.audit(t, "2d8f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", accessReview("dave-view"), revoke[3:], main[2])
		if revs := third.GetReview().GetRevocations(); len(revs) != 0 {
			t.Errorf("third audit checked %v after the Revoke action was overruled", revs)
		}
		st, _ = f.reg.Status(ctx, third.GetAuditId())
		if len(st.GetRevocations()) != 2 || st.GetRevocations()[0].GetState() != secureauditv1.RevocationState_REVOCATION_STATE_OVERRULED || st.GetRevocations()[0].GetDecidedBy().GetSubject() != "bob" {
			t.Errorf("revocations after the overruling: %v", st.GetRevocations())
		}
		var overruled bool
		for _, e := range f.entries(t) {
			overruled = overruled || strings.Contains(e.Summary, "decided Confirmed for review item "+Key(user("mallory@example.com"))) && strings.Contains(e.Summary, "; overrules the report's Revoke action on mallory-admin (revocations [2])")
		}
		if !overruled {
			t.Error("no evidence of the decision overruling the Revoke action")
		}
		var verified bool
		for _, e := range f.entries(t) {
			verified = verified || strings.Contains(e.Summary, "verified the revocation of User:dave@example.com's access through dave-view on aks-prod (revocation 1, the report's Revoke action on finding 1111111111111111")
		}
		if !verified {
			t.Error("no evidence of the verified revocation naming the finding's Revoke action")
		}
	})
}

// TestReviewNeedsIssuer: without an OpenID Connect issuer nobody decides.
func TestReviewNeedsIssuer(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		reg := New(db, nil, store.New(db), nil, rpctest.Logger(t))
		_, _, err := reg.Decide(context.Background(), &secureauditv1.DecideReviewRequest{ItemKey: "0123456789abcdef", Decision: secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED, IdToken: "x"})
		if err != ErrNoIssuer {
			t.Errorf("err = %v, want ErrNoIssuer", err)
		}
	})
}
