package review

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/rpctest"
	evlog "secureaudit.dev/services/orchestrator/evidence"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/people/peopletest"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// BenchmarkImport imports a sheet of 2,000 items, each decided, on SQLite:
// parse, match by key against the audit's stored sheet, one evidence entry
// per decision, one transaction. A new campaign per iteration (its opening
// is not timed).
func BenchmarkImport(b *testing.B) {
	const items = 2000
	ctx := context.Background()
	db := storagetest.Open(b, storagetest.DSN(b, "sqlite"))
	st := store.New(db)
	log, err := evlog.New(ctx, db, filepath.Join(b.TempDir(), "evidence.key"))
	if err != nil {
		b.Fatal(err)
	}
	iss := peopletest.New(b)
	pv, err := people.New(people.Config{Issuer: iss.URL(), Audience: audience, CAFile: iss.CAFile})
	if err != nil {
		b.Fatal(err)
	}
	reg := New(db, log, st, pv, rpctest.Logger(b))
	tok := iss.Sign(b, iss.Valid(audience, "bob", "Bob Approver"))
	var review []*secureauditv1.ReviewSubject
	for i := range items {
		review = append(review, &secureauditv1.ReviewSubject{Subject: user(fmt.Sprintf("user%d@example.com", i)), Grants: []*secureauditv1.AccessGrant{grant(fmt.Sprintf("b%d", i))}})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := fmt.Sprintf("%08x-5a8e-4d57-9a45-6c2d0e1f2a3b", i)
		a := &secureauditv1.Audit{Id: id, Cluster: "aks-prod", State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, CreatedAt: timestamppb.New(time.Now())}
		if err := st.CreateAudit(ctx, a); err != nil {
			b.Fatal(err)
		}
		report := &secureauditv1.Report{AuditId: id, Cluster: "aks-prod", AccessReview: review}
		if err := reg.Open(ctx, id, "aks-prod", report, nil, nil); err != nil {
			b.Fatal(err)
		}
		sheet := sheetOf(b, report)
		if err := st.SaveResult(ctx, id, nil, report, map[secureauditv1.ReportFormat][]byte{secureauditv1.ReportFormat_REPORT_FORMAT_CSV: []byte(sheet)}); err != nil {
			b.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(sheet, "\n"), "\n")
		for j := 1; j < len(lines); j++ {
			lines[j] = strings.Replace(lines[j], ",,,,", ",Confirmed,,,", 1)
		}
		filled := []byte(strings.Join(lines, "\n") + "\n")
		b.StartTimer()
		out, err := reg.Import(ctx, id, filled, tok)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.GetDecisions()) != items {
			b.Fatalf("%d decisions, want %d", len(out.GetDecisions()), items)
		}
	}
}
