package review

import (
	"context"
	"fmt"
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

// TestCheckManyRevocations: an audit checks a few hundred open
// revocations in one transaction with their evidence: every revocation
// gets its entry, in the order of the revocations, at consecutive
// indexes of the log, and its state; the audit run again records
// nothing twice; the next audit raises the survivors to critical.
func TestCheckManyRevocations(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := setup(t, db)
		const n = 240
		// review is the access review with user i's grant b<i> for each
		// i kept says to keep.
		review := func(kept func(i int) bool) []*secureauditv1.ReviewSubject {
			var out []*secureauditv1.ReviewSubject
			for i := range n {
				if kept(i) {
					out = append(out, &secureauditv1.ReviewSubject{Subject: user(fmt.Sprintf("user%d@example.com", i)), Grants: []*secureauditv1.AccessGrant{grant(fmt.Sprintf("b%d", i))}})
				}
			}
			return out
		}
		var main []*secureauditv1.Finding
		var revoke []string
		for i := range n {
			id := fmt.Sprintf("%016x", i+1)
			main = append(main, finding(id, user(fmt.Sprintf("user%d@example.com", i)), fmt.Sprintf("b%d", i), secureauditv1.Severity_SEVERITY_CRITICAL, secureauditv1.RuleFamily_RULE_FAMILY_RBAC))
			revoke = append(revoke, id)
		}
		f.audit(t, "0b6f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", review(func(int) bool { return true }), revoke, main...)
		size := func() int64 {
			t.Helper()
			s, err := f.log.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		// checks returns the entries appended since index from, which must
		// all be the given audit's revocation checks.
		checks := func(from int64, auditID string) []*evidence.Entry {
			t.Helper()
			es, err := f.log.Entries(ctx, from, size())
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range es {
				if e.Control != Control || !strings.HasPrefix(e.Summary, "audit "+auditID+" ") {
					t.Fatalf("entry %d is not a check of audit %s: %s", from+int64(i), auditID, e.Summary)
				}
			}
			return es
		}
		// The second audit: the even users' grants are gone.
		before := size()
		second := f.audit(t, "1c7f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", review(func(i int) bool { return i%2 == 1 }), nil)
		es := checks(before, second.GetAuditId())
		if len(es) != n {
			t.Fatalf("second audit appended %d entries, want %d", len(es), n)
		}
		for i, e := range es {
			want, outcome := fmt.Sprintf("verified the revocation of User:user%d@example.com's access through b%d on aks-prod (revocation %d,", i, i, i+1), evidence.OutcomePass
			if i%2 == 1 {
				want, outcome = fmt.Sprintf("found User:user%d@example.com's access through b%d still present on aks-prod, 1 audit(s) after its revocation", i, i), evidence.OutcomeFail
			}
			if !strings.Contains(e.Summary, want) || e.Outcome != outcome || e.Subject != fmt.Sprintf("User:user%d@example.com", i) {
				t.Fatalf("entry %d of the second audit: %s %s, want %s %q", i, e.Outcome, e.Summary, outcome, want)
			}
		}
		st, err := f.reg.Status(ctx, second.GetAuditId())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.GetRevocations()) != n {
			t.Fatalf("%d revocations, want %d", len(st.GetRevocations()), n)
		}
		for _, v := range st.GetRevocations() {
			i := int(v.GetId()) - 1
			want, sev, survived := secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED, secureauditv1.Severity_SEVERITY_UNSPECIFIED, uint32(0)
			if i%2 == 1 {
				want, sev, survived = secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT, secureauditv1.Severity_SEVERITY_HIGH, 1
			}
			if v.GetState() != want || v.GetSeverity() != sev || v.GetAuditsSurvived() != survived || v.GetCheckedAuditId() != second.GetAuditId() {
				t.Fatalf("revocation %d (user%d): %s %s after %d audits checked by %s, want %s %s after %d by %s", v.GetId(), i, v.GetState(), v.GetSeverity(),
					v.GetAuditsSurvived(), v.GetCheckedAuditId(), want, sev, survived, second.GetAuditId())
			}
		}
		// The second audit run again (its replica stopped): every
		// revocation was checked by it, nothing is recorded twice.
		before = size()
		again := &secureauditv1.Report{AuditId: second.GetAuditId(), Cluster: "aks-prod", AccessReview: review(func(i int) bool { return i%2 == 1 })}
		if err := f.reg.Open(ctx, again.GetAuditId(), "aks-prod", again, nil, nil); err != nil {
			t.Fatal(err)
		}
		if got := size(); got != before {
			t.Errorf("the second audit run again appended %d entries, want none", got-before)
		}
		// The third audit: the odd users' grants survive a second audit.
		before = size()
		third := f.audit(t, "2d8f0d46-5a8e-4d57-9a45-6c2d0e1f2a3b", review(func(i int) bool { return i%2 == 1 }), nil)
		if es := checks(before, third.GetAuditId()); len(es) != n/2 {
			t.Errorf("third audit appended %d entries, want %d", len(es), n/2)
		}
		for _, v := range third.GetReview().GetRevocations() {
			if v.GetState() != secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT || v.GetSeverity() != secureauditv1.Severity_SEVERITY_CRITICAL || v.GetAuditsSurvived() != 2 {
				t.Fatalf("third audit's revocation %d: %s %s after %d audits, want still present, critical, 2", v.GetId(), v.GetState(), v.GetSeverity(), v.GetAuditsSurvived())
			}
		}
	})
}
